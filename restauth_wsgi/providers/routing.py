"""Which provider may be sent which token.

A token goes only to a provider that could have issued it, because sending
it anywhere else hands a credential to a stranger (a GitHub token to a
self-hosted GitLab) and asks the wrong party about it:

* a JWT only to the provider whose issuer it names (its ``iss``, a string);
* a token with a prefix of a known family (the table below) only to a
  provider of that family, or to one whose ``TOKEN_PREFIXES`` names the
  prefix; our own ``restauth_`` tokens to no provider at all;
* any other opaque token to the providers that have no prefixes of their own.
"""

from __future__ import annotations

#: Token prefixes that identify the family that issued a token.
FAMILY_PREFIXES: dict[str, tuple[str, ...]] = {
    # GitHub: OAuth app, user-to-server, personal, server-to-server, refresh, fine-grained.
    "github": ("gho_", "ghu_", "ghp_", "ghs_", "ghr_", "github_pat_"),
    # GitLab's documented prefixes (doc/security/tokens, "Token prefixes"): personal,
    # OAuth application secret, deploy, runner, CI job, trigger, feed, mail,
    # agent, workspace, SCIM, feature flags. Its OAuth access tokens have none.
    "gitlab": (
        "glpat-",
        "gloas-",
        "gldt-",
        "glrt-",
        "glrtr-",
        "glcbt-",
        "glptt-",
        "glft-",
        "glimt-",
        "glagent-",
        "glwt-",
        "glsoat-",
        "glffct-",
    ),
    # Slack: every xox* token (user, bot, configuration, rotated, and the
    # browser-session xoxc-/xoxd-, which must never reach another provider)
    # and app-level tokens.
    "slack": ("xox", "xapp-"),
    "google": ("ya29.",),
    "facebook": ("EAA",),
    # This package's own API tokens: never sent to any provider.
    "restauth": ("restauth_",),
}
_BY_PREFIX = tuple(
    (prefix, family) for family, prefixes in FAMILY_PREFIXES.items() for prefix in prefixes
)


def family_of(token: str) -> str | None:
    """The family whose prefix ``token`` carries, or ``None``."""
    for prefix, family in _BY_PREFIX:
        if token.startswith(prefix):
            return family
    return None


def may_receive(token: str, *, family: str | None, prefixes: tuple[str, ...]) -> bool:
    """Whether an opaque ``token`` may go to a provider of ``family`` with ``prefixes``."""
    if prefixes and token.startswith(prefixes):
        return True
    token_family = family_of(token)
    if token_family is not None:
        return token_family == family
    return not prefixes
