"""An outside verifier: PyJWT checks a token using only a Public key URL document.

Usage: verify_token.py TOKEN_FILE DOCUMENT_FILE ISSUER
The document is Omnichannel's multi-key array, one PEM block, or a JWKS (read by PyJWT's own
PyJWKSet). Exits 0 and prints the
verified claims as JSON when the token verifies; raises otherwise.
"""
import base64
import json
import sys

import jwt


def key_for(token: str, document: bytes):
    text = document.decode("utf-8")
    if text.lstrip().startswith("-----BEGIN PUBLIC KEY-----"):
        return text
    kid = jwt.get_unverified_header(token)["kid"]
    entries = json.loads(text)
    if isinstance(entries, dict):
        return jwt.PyJWKSet.from_dict(entries)[kid].key
    match = [e for e in entries if e["kid"] == kid]
    if len(match) != 1:
        raise SystemExit(f"kid {kid} is not published exactly once")
    return base64.b64decode(match[0]["publicKey"]).decode("ascii")


def main() -> None:
    token = open(sys.argv[1]).read().strip()
    document = open(sys.argv[2], "rb").read()
    issuer = sys.argv[3]
    claims = jwt.decode(
        token,
        key_for(token, document),
        algorithms=["RS256"],
        issuer=issuer,
        options={"require": ["iss", "sub", "iat", "exp", "nbf"]},
    )
    if "lwicontexts" in claims and not isinstance(claims["lwicontexts"], str):
        raise SystemExit("lwicontexts must be a string")
    print(json.dumps(claims))


if __name__ == "__main__":
    main()
