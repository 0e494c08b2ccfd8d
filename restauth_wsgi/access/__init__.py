"""Who may do what once known, and who may try at all.

* :mod:`.policy`: path levels (public, optional, required), networks,
  read-only groups and per-path rules;
* :mod:`.lockout`: counting failures, and refusing what costs or can be
  guessed from where guessing happens.
"""
