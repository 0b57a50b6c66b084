"""`CfsslAuthority`: CFSSL's HTTP API signs (`cfssl+http://host:8888`).

    cfssl+http://ca.plant:8888?client_profile=client&server_profile=server

What the Debian build (`golang-cfssl`, a 2016 snapshot) answers, as measured against
it: `POST /api/v1/cfssl/info` (POST only) gives the CA certificate; `POST
/api/v1/cfssl/sign` signs a CSR with `profile` at the top level of the body, takes
the subject from `subject` and the DNS/IP names from `hosts` (`[]` drops any the CSR
asks for); `POST /api/v1/cfssl/revoke` takes the serial in decimal and works only
when the server runs with `-db-config`. That build ignores `extensions`,
`not_before` and `not_after` in a sign request and copies no URI SAN from a CSR: its
certificates name the entity in the subject only (`OU=urn:shopfloor:<type>`, `CN=<id>`),
which `entity_of` reads, and last as long as the profile's `expiry` says. It has no
CRL endpoint. A private key is never sent: the platform always signs a CSR.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ._authority import AuthorityOptions, CertificateAuthority, SigningRequest
from ._errors import CaMisconfigured, CaUnavailable, InvalidCertificateRequest
from ._identity import URN_PREFIX
from ._x509 import CertificateKind

__all__ = ["CfsslAuthority"]

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
#: CFSSL error codes (`cferr`) of a request it refused as such: a CSR it cannot decode
#: or parse (9xxx: CSR errors, 2xxx: certificate errors, 3xxx: private key errors).
_REQUEST_ERROR_FAMILIES = (2, 3, 9)


class CfsslAuthority(CertificateAuthority, scheme="cfssl"):
    writes_uri = False
    honours_ttl = False

    def __init__(
        self, base_url: str, *, client_profile: str = "client", server_profile: str = "server"
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.profiles = {
            CertificateKind.CLIENT: client_profile,
            CertificateKind.SERVER: server_profile,
        }
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def from_url(cls, url: str, *, options: AuthorityOptions) -> Self:
        split = urlsplit(url)
        scheme = split.scheme.lower()
        transport = scheme.partition("+")[2] or "http"
        if transport not in ("http", "https") or not split.hostname:
            raise CaMisconfigured(
                "a CFSSL URL reads cfssl+http://host:8888 or cfssl+https://host:8888"
            )
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        unknown = set(query) - {"client_profile", "server_profile"}
        if unknown:
            raise CaMisconfigured(f"unknown CFSSL URL option(s): {', '.join(sorted(unknown))}")
        port = f":{split.port}" if split.port else ""
        return cls(
            f"{transport}://{split.hostname}{port}{split.path.rstrip('/')}",
            client_profile=query.get("client_profile", "client"),
            server_profile=query.get("server_profile", "server"),
        )

    async def _open(self) -> x509.Certificate:
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=TIMEOUT)
        try:
            result = await self._call("info", {})
            return x509.load_pem_x509_certificate(str(result["certificate"]).encode())
        except (KeyError, ValueError) as exc:
            await self._close()
            raise CaMisconfigured(f"CFSSL at {self.base_url} answered no CA certificate") from exc
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def sign(self, request: SigningRequest) -> x509.Certificate:
        entity = request.entity
        body = {
            "certificate_request": request.csr.public_bytes(serialization.Encoding.PEM).decode(),
            "profile": self.profiles[request.kind],
            "hosts": list(dict.fromkeys(request.hostnames)),
            "subject": {"CN": entity.id, "names": [{"OU": f"{URN_PREFIX}{entity.type}"}]},
        }
        result = await self._call("sign", body)
        try:
            certificate = x509.load_pem_x509_certificate(str(result["certificate"]).encode())
            certificate.verify_directly_issued_by(self.certificate)
        except (KeyError, ValueError, TypeError, InvalidSignature) as exc:
            raise CaUnavailable(
                f"CFSSL at {self.base_url} answered a certificate its CA did not sign"
            ) from exc
        if certificate.public_key() != request.csr.public_key():
            raise CaUnavailable(f"CFSSL at {self.base_url} signed another key than asked")
        _check_names(certificate, request)
        return certificate

    async def revoke(self, serial: int, reason: x509.ReasonFlags) -> None:
        # The 2016 build looks the serial up in decimal, with an empty authority key id.
        body = {"serial": str(serial), "authority_key_id": "", "reason": reason.value}
        await self._call("revoke", body)

    async def _call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._http is None:
            raise CaUnavailable("the CFSSL client is not open")
        try:
            response = await self._http.post(f"/api/v1/cfssl/{endpoint}", json=body)
        except httpx.HTTPError as exc:
            raise CaUnavailable(
                f"CFSSL at {self.base_url} did not answer ({type(exc).__name__})"
            ) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CaUnavailable(
                f"CFSSL at {self.base_url} answered {response.status_code} without JSON"
            )
        if answer.get("success") is True and isinstance(answer.get("result"), dict):
            result: dict[str, Any] = answer["result"]
            return result
        raise _refusal(self.base_url, endpoint, answer.get("errors") or [])


def _refusal(base_url: str, endpoint: str, errors: list[Any]) -> Exception:
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    given = first.get("code")
    code = given if isinstance(given, int) else 0
    message = str(first.get("message", "no reason given"))[:200]
    if endpoint == "sign" and code // 1000 in _REQUEST_ERROR_FAMILIES:
        return InvalidCertificateRequest(f"CFSSL refused the request: {message}")
    return CaUnavailable(f"CFSSL at {base_url} refused {endpoint}: {message} ({code})")


def _check_names(certificate: x509.Certificate, request: SigningRequest) -> None:
    """CFSSL signs what its profile allows: make sure it signed what was asked."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names: set[str] = set()
    else:
        names = set(san.get_values_for_type(x509.DNSName))
        names |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    asked = {_normal_host(host) for host in request.hostnames}
    if names != asked:
        raise CaUnavailable(
            f"CFSSL signed the names {sorted(names)} instead of {sorted(asked)}: "
            "check the profile's name_whitelist"
        )


def _normal_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
