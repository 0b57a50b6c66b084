"""Identity and access: passwords, tokens, OIDC, thing keys, roles."""

from ._authenticator import Authenticator, BearerVerifier
from ._credentials import thing_key
from ._errors import AuthError, Forbidden, Unauthenticated
from ._oidc import OidcClaimsMapping, OidcIdentity, OidcVerifier
from ._passwords import MIN_PASSWORD_LENGTH, Passwords, hash_password, verify_password
from ._principal import Principal
from ._roles import AGENT_GRANTS, PERMISSIONS, Action, allowed
from ._secrets import SecretFiles
from ._thing_access import AuthenticatedThing, ThingAccess
from ._thing_keys import ThingKeys
from ._throttle import SignInAttempt, SignInThrottle, SignInThrottled
from ._tokens import IssuedToken, TokenIssuer

__all__ = [
    "AGENT_GRANTS",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "Action",
    "AuthError",
    "AuthenticatedThing",
    "Authenticator",
    "BearerVerifier",
    "Forbidden",
    "IssuedToken",
    "OidcClaimsMapping",
    "OidcIdentity",
    "OidcVerifier",
    "Passwords",
    "Principal",
    "SecretFiles",
    "SignInAttempt",
    "SignInThrottle",
    "SignInThrottled",
    "ThingAccess",
    "ThingKeys",
    "TokenIssuer",
    "Unauthenticated",
    "allowed",
    "hash_password",
    "thing_key",
    "verify_password",
]
