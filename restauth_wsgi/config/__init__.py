"""How settings are declared, read and checked; the settings themselves are
:mod:`restauth_wsgi.settings` (and :mod:`restauth_wsgi.providers.settings`).

* :mod:`.declaration`: one declaration per setting (parser, default, doc),
  and the loops that read and check them;
* :mod:`.kinds`: each kind of value: parsed from a string, checked as a
  typed value, shown by ``restauth config``;
* :mod:`.durations`: ``90d``, ``12h``;
* :mod:`.env_file`: files of ``NAME=value`` lines (``RESTAUTH_SETTINGS_FILE``,
  the password file).
"""
