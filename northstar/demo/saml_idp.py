"""A small SAML 2.0 identity provider on loopback, answering as Okta or Azure AD do: its metadata (``/metadata``),
and ``/sso``, which takes an AuthnRequest by HTTP-Redirect and answers with the page that posts a signed Response to
the service provider's ACS (the person at the screen is ``person``, already signed in). Signatures are made with
python3-saml's own signing (xmlsec) and the IdP's own key.

``sign_on`` builds a response without a request (IdP-initiated), and ``misbehave`` makes the next responses wrong in
one way each, as an attacker or a broken IdP would: tampered after signing, signed by a key the metadata does not
hold, unsigned, signed with SHA-1, for another audience, to another recipient, expired, or answering another request.
Tests and the benchmark serve it with ``loopback.serving``.
"""

from __future__ import annotations

import base64
import html
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

Misbehaviour = Literal["tampered", "foreign_key", "unsigned", "sha1", "audience", "recipient", "expired", "request"]
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


@dataclass(frozen=True)
class SigningKey:
    """A private key (PEM) and its self-signed certificate (PEM)."""

    key: str
    certificate: str

    @classmethod
    def new(cls, name: str) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issued = datetime.now(UTC) - timedelta(days=1)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued)
            .not_valid_after(issued + timedelta(days=365))
            .sign(private, hashes.SHA256())
        )
        key = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(key.decode(), certificate.public_bytes(serialization.Encoding.PEM).decode())

    @property
    def certificate_body(self) -> str:
        return "".join(line for line in self.certificate.splitlines() if "-----" not in line)


@dataclass
class SamlPerson:
    name_id: str
    email: str
    name: str
    groups: list[str] = field(default_factory=list)


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeSamlIdp:
    person: SamlPerson = field(default_factory=lambda: SamlPerson("ada", "ada@example.com", "Ada Lovelace"))
    misbehave: Misbehaviour | None = None
    entity_id: str = ""
    key: SigningKey = field(default_factory=lambda: SigningKey.new("Fake IdP"))
    foreign: SigningKey = field(default_factory=lambda: SigningKey.new("Somebody else"))
    sign_ons: int = 0

    def serve_at(self, base_url: str) -> None:
        self.entity_id = f"{base_url}/metadata"
        self.base_url = base_url

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/metadata", self._metadata), Route("/sso", self._sso)])

    def metadata_xml(self) -> str:
        return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID={quoteattr(self.entity_id)}>
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>{self.key.certificate_body}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location={quoteattr(self.base_url + "/sso")}/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""

    async def _metadata(self, request: Request) -> Response:
        return Response(self.metadata_xml(), media_type="application/samlmetadata+xml")

    async def _sso(self, request: Request) -> Response:
        """HTTP-Redirect binding: the AuthnRequest is deflated, base64 and in the query."""
        encoded = request.query_params.get("SAMLRequest", "")
        try:
            authn_request = etree.fromstring(zlib.decompress(base64.b64decode(encoded), -15))
        except (ValueError, zlib.error, etree.XMLSyntaxError):
            return Response("SAMLRequest is not a deflated AuthnRequest", status_code=400)
        acs_url = authn_request.get("AssertionConsumerServiceURL", "")
        issuer = authn_request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") or ""
        signed = self.sign_on(acs_url=acs_url, audience=issuer, in_response_to=authn_request.get("ID"))
        return HTMLResponse(post_form(acs_url, signed, request.query_params.get("RelayState")))

    def sign_on(
        self, *, acs_url: str, audience: str, in_response_to: str | None = None, assertion_id: str | None = None
    ) -> str:
        """A base64 SAML Response for ``person``, as the HTTP-POST binding carries it."""
        self.sign_ons += 1
        issued = datetime.now(UTC)
        lasts = timedelta(minutes=-10 if self.misbehave == "expired" else 5)
        if self.misbehave == "audience":
            audience = "https://another-service.example/metadata"
        recipient = "https://another-service.example/acs" if self.misbehave == "recipient" else acs_url
        if self.misbehave == "request":
            in_response_to = f"_{uuid.uuid4().hex}"
        answers = f" InResponseTo={quoteattr(in_response_to)}" if in_response_to else ""
        attributes = "".join(
            f'<saml:Attribute Name="{name}">'
            + "".join(f"<saml:AttributeValue>{escape(value)}</saml:AttributeValue>" for value in values)
            + "</saml:Attribute>"
            for name, values in (
                ("email", [self.person.email]),
                ("displayName", [self.person.name]),
                ("groups", self.person.groups),
            )
            if values
        )
        assertion = f"""<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID={quoteattr(assertion_id or f"_{uuid.uuid4().hex}")} Version="2.0" IssueInstant="{_instant(issued)}">
  <saml:Issuer>{escape(self.entity_id)}</saml:Issuer>
  <saml:Subject>
    <saml:NameID Format="{UNSPECIFIED}">{escape(self.person.name_id)}</saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData
          NotOnOrAfter="{_instant(issued + lasts)}" Recipient={quoteattr(recipient)}{answers}/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="{_instant(issued - timedelta(minutes=1))}" NotOnOrAfter="{_instant(issued + lasts)}">
    <saml:AudienceRestriction><saml:Audience>{escape(audience)}</saml:Audience></saml:AudienceRestriction>
  </saml:Conditions>
  <saml:AuthnStatement AuthnInstant="{_instant(issued)}" SessionIndex="_{uuid.uuid4().hex}">
    <saml:AuthnContext>
      <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
    </saml:AuthnContext>
  </saml:AuthnStatement>
  <saml:AttributeStatement>{attributes}</saml:AttributeStatement>
</saml:Assertion>"""
        signed = self._signed(assertion)
        response = f"""<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_{uuid.uuid4().hex}" Version="2.0" IssueInstant="{_instant(issued)}"
    Destination={quoteattr(acs_url)}{answers}>
  <saml:Issuer>{escape(self.entity_id)}</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  {signed}
</samlp:Response>"""
        if self.misbehave == "tampered":
            response = response.replace(escape(self.person.email), "mallory@example.com")
        return base64.b64encode(response.encode()).decode()

    def _signed(self, assertion: str) -> str:
        if self.misbehave == "unsigned":
            return assertion
        key = self.foreign if self.misbehave == "foreign_key" else self.key
        weak = self.misbehave == "sha1"
        signed = OneLogin_Saml2_Utils.add_sign(
            assertion,
            key.key,
            key.certificate,
            sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA1 if weak else OneLogin_Saml2_Constants.RSA_SHA256,
            digest_algorithm=OneLogin_Saml2_Constants.SHA1 if weak else OneLogin_Saml2_Constants.SHA256,
        )
        return str(signed.decode() if isinstance(signed, bytes) else signed)


def post_form(acs_url: str, saml_response: str, relay_state: str | None) -> str:
    """The HTTP-POST binding's page: a form the browser submits to the ACS at once."""
    relay = (
        f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">' if relay_state is not None else ""
    )
    return f"""<!doctype html><html lang="en"><head><title>Signing you in</title><link rel="icon" href="data:,"></head>
<body onload="document.forms[0].submit()"><main>
<form method="post" action="{html.escape(acs_url)}">
<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">{relay}
<noscript><button type="submit">Continue</button></noscript>
</form></main></body></html>"""
