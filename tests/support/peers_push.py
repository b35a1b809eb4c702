"""The checks of the test push service (tests/support/peers.py) on one push request, as a real
push service and the browser behind it would make them: the VAPID authorization of RFC 8292
(an ES256 JWT verified with the `k` key, its aud, exp and sub), the headers of RFC 8030 (TTL,
Urgency, Topic) and the aes128gcm body of RFC 8291, decrypted with the http-ece library (the
reference implementation's Python port, not the platform's code) with the subscription's
private key and auth secret. Each check raises PushRefused with the HTTP status to answer."""

import base64
import binascii
import json
import re
import struct
import time

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# RFC 8030 section 7.2 / RFC 8291 section 4: a push service need not take a body over 4096
# octets (header included); the services browsers use answer 413 beyond it.
BODY_MAX = 4096
# RFC 8292 section 2: exp no more than 24 hours after the request.
EXP_MAX_S = 24 * 3600
URGENCIES = ("very-low", "low", "normal", "high")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class PushRefused(Exception):
    """A push the service refuses: status is the HTTP status to answer, str() the reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def b64url_decode(s, what):
    """Unpadded base64url (RFC 7515) to bytes; PushRefused(401) naming what if it is not."""
    if not isinstance(s, str) or not _B64URL.match(s) or len(s) % 4 == 1:
        raise PushRefused(401, f"{what}: not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as e:
        raise PushRefused(401, f"{what}: {e}") from None


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def public_key_raw(public_key):
    """The uncompressed point (65 bytes) of a P-256 public key."""
    return public_key.public_bytes(serialization.Encoding.X962,
                                   serialization.PublicFormat.UncompressedPoint)


def parse_authorization(value):
    """The t and k parameters of "vapid t=<jwt>, k=<key>" (RFC 8292 section 3); PushRefused(401)
    when the header is missing, of another scheme or lacks either."""
    if not value:
        raise PushRefused(401, "no Authorization header")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise PushRefused(401, f"Authorization scheme {scheme!r}, not vapid")
    params = {}
    for part in rest.split(","):
        name, eq, v = part.strip().partition("=")
        if not eq:
            raise PushRefused(401, f"Authorization parameter {part.strip()!r} has no value")
        v = v.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        params[name.strip().lower()] = v
    if "t" not in params or "k" not in params:
        raise PushRefused(401, "Authorization lacks t= or k=")
    return params["t"], params["k"]


def check_vapid(authorization, audience, now=None, application_server_key=None):
    """Verifies the VAPID authorization of a push to this service (origin audience): the JWT's
    ES256 signature (raw r||s, 64 bytes) with the k key, alg ES256, aud == audience, now < exp
    <= now + 24 h, sub a mailto: or https: URI. With application_server_key (the key the
    subscription was made with), k must be that key (403 otherwise, RFC 8292 section 4.2).
    Returns {sub, aud, exp, k}; PushRefused(401 or 403) says what is wrong."""
    now = time.time() if now is None else now
    token, k = parse_authorization(authorization)
    key_raw = b64url_decode(k, "k")
    if len(key_raw) != 65 or key_raw[0] != 4:
        raise PushRefused(401, f"k: {len(key_raw)} bytes, not an uncompressed P-256 point")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_raw)
    except ValueError:
        raise PushRefused(401, "k: not a point on P-256") from None
    parts = token.split(".")
    if len(parts) != 3:
        raise PushRefused(401, f"t: {len(parts)} parts, not a JWS of 3")
    try:
        header = json.loads(b64url_decode(parts[0], "JWT header"))
        claims = json.loads(b64url_decode(parts[1], "JWT claims"))
    except (ValueError, UnicodeDecodeError) as e:
        raise PushRefused(401, f"t: not JSON: {e}") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise PushRefused(401, f"JWT header {header!r}: alg is not ES256")
    sig = b64url_decode(parts[2], "JWT signature")
    if len(sig) != 64:
        raise PushRefused(401, f"JWT signature: {len(sig)} bytes, not raw r||s (64)")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, (parts[0] + "." + parts[1]).encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PushRefused(401, "JWT signature does not verify with k") from None
    if not isinstance(claims, dict):
        raise PushRefused(401, "JWT claims are not an object")
    aud, exp, sub = claims.get("aud"), claims.get("exp"), claims.get("sub")
    if aud != audience:
        raise PushRefused(401, f"JWT aud {aud!r}, not {audience!r}")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise PushRefused(401, f"JWT exp {exp!r} is not a whole number")
    if exp <= now:
        raise PushRefused(401, f"JWT expired (exp {exp}, now {int(now)})")
    if exp > now + EXP_MAX_S:
        raise PushRefused(401, f"JWT exp {exp} is more than 24 h ahead (now {int(now)})")
    if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise PushRefused(401, f"JWT sub {sub!r} is not a mailto: or https: URI")
    if application_server_key is not None and key_raw != application_server_key:
        raise PushRefused(403, "k is not the key the subscription was made with")
    return {"sub": sub, "aud": aud, "exp": exp, "k": k}


def check_headers(headers):
    """The RFC 8030 headers of a push: TTL required (a whole number >= 0), Urgency one of the
    four values if given, Topic at most 32 base64url characters if given, Content-Encoding
    aes128gcm. Returns {ttl, urgency, topic, content_encoding, content_type}; PushRefused(400)."""
    ttl = headers.get("TTL")
    if ttl is None:
        raise PushRefused(400, "no TTL header")
    if not re.match(r"^[0-9]{1,10}$", ttl.strip()):
        raise PushRefused(400, f"TTL {ttl!r} is not a whole number of seconds")
    urgency = headers.get("Urgency")
    if urgency is not None and urgency.strip() not in URGENCIES:
        raise PushRefused(400, f"Urgency {urgency!r} is none of {', '.join(URGENCIES)}")
    topic = headers.get("Topic")
    if topic is not None and not _TOPIC.match(topic.strip()):
        raise PushRefused(400, f"Topic {topic!r} is not 1 to 32 base64url characters")
    encoding = headers.get("Content-Encoding")
    if encoding is None or encoding.strip().lower() != "aes128gcm":
        raise PushRefused(400, f"Content-Encoding {encoding!r}, not aes128gcm")
    return {"ttl": int(ttl), "urgency": urgency.strip() if urgency is not None else None,
            "topic": topic.strip() if topic is not None else None,
            "content_encoding": encoding.strip(),
            "content_type": headers.get("Content-Type")}


def decrypt_body(body, private_key, auth_secret):
    """Decrypts an aes128gcm push body (RFC 8291) with http_ece for the subscription's key pair
    and auth secret, after checking what RFC 8291 section 4 asks of it: at most 4096 octets
    (413 otherwise), the key id is the sender's 65-octet public key, one record. Returns the
    plaintext; PushRefused(400 or 413)."""
    if len(body) > BODY_MAX:
        raise PushRefused(413, f"body of {len(body)} bytes, over {BODY_MAX}")
    if len(body) < 21:
        raise PushRefused(400, f"body of {len(body)} bytes has no aes128gcm header")
    rs = struct.unpack("!L", body[16:20])[0]
    idlen = body[20]
    if idlen != 65:
        raise PushRefused(400, f"key id of {idlen} bytes, not the sender's public key (65)")
    record = len(body) - 21 - idlen
    if rs < 18:
        raise PushRefused(400, f"record size {rs} under 18")
    if record < 17 or record > rs:
        raise PushRefused(400, f"{record} bytes after the header: not one record of <= {rs}")
    try:
        return http_ece.decrypt(body, private_key=private_key, auth_secret=auth_secret,
                                version="aes128gcm")
    except Exception as e:  # ECEException, or ValueError for a key id off the curve
        raise PushRefused(400, f"decryption failed: {getattr(e, 'message', None) or e!r}") from None


def parse_payload(plaintext):
    """The decrypted payload as JSON (what the platform's service worker reads); PushRefused(400)
    if it is not UTF-8 JSON."""
    try:
        return json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise PushRefused(400, f"payload is not UTF-8 JSON: {e}") from None
