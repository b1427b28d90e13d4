"""The operator's signing key: where it lives, how it is made, how it is loaded.

Anchored evidence (:mod:`treasure.anchor`) is only worth something if the key that signs a run's
manifest is out of reach of whoever can write the workspace. So the key never lives in a
workspace: its path comes from ``TREASURE_SIGNING_KEY``, else the user's config folder
(``$XDG_CONFIG_HOME/treasure/signing_key.pem``, default ``~/.config/...``). A host that only
verifies can hold the public key alone in ``TREASURE_VERIFY_KEY`` (a PEM file path).

Ed25519 through the ``cryptography`` package (the ``sign`` extra): small keys, deterministic
signatures (the same manifest signs to the same bytes), and no parameters to get wrong.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasure.errors import TreasureError

ENV_SIGNING_KEY = "TREASURE_SIGNING_KEY"
ENV_VERIFY_KEY = "TREASURE_VERIFY_KEY"
KEY_FILE = "signing_key.pem"


def default_key_path() -> Path:
    """``TREASURE_SIGNING_KEY`` if set, else ``<user config>/treasure/signing_key.pem``."""
    env = os.environ.get(ENV_SIGNING_KEY)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "treasure" / KEY_FILE


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - the extra is in dev
        raise TreasureError("KEY_CRYPTO_MISSING", "signing needs the `cryptography` package") from exc
    return serialization, ed25519


def fingerprint(public_raw: bytes) -> str:
    """Key id: first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key and its id; ``sign`` is deterministic (Ed25519)."""

    path: Path
    key_id: str
    _key: Any

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data))

    def public(self) -> "VerifyKey":
        serialization, _ = _crypto()
        pub = self._key.public_key()
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey(self.key_id, pub, fingerprint(raw))


@dataclass(frozen=True)
class VerifyKey:
    """A public key: verifies manifests signed by its private half."""

    key_id: str
    _key: Any
    _fp: str

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, data)
        except Exception:  # cryptography raises InvalidSignature; any failure is "not valid"
            return False
        return True


def _inside(path: Path, workspace: Path | None) -> bool:
    if workspace is None:
        return False
    try:
        path.resolve().relative_to(workspace.resolve())
    except ValueError:
        return False
    return True


def init_key(path: Path | None = None, *, workspace: Path | None = None, force: bool = False) -> SigningKey:
    """Make a new Ed25519 key at ``path`` (default: :func:`default_key_path`), mode 0600.

    Refuses a path inside ``workspace`` (a key the attacker can read anchors nothing) and an
    existing key unless ``force`` (replacing a key orphans every signature made with it).
    """
    serialization, ed25519 = _crypto()
    target = (path or default_key_path()).expanduser()
    if _inside(target, workspace):
        raise TreasureError("KEY_IN_WORKSPACE", f"{target} is inside the workspace {workspace}",
                            path=str(target))
    if target.exists() and not force:
        raise TreasureError("KEY_EXISTS", f"a signing key already exists at {target}", path=str(target))
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise TreasureError("KEY_IO", f"could not write the key: {exc.strerror or exc}", path=str(target)) from exc
    loaded = load_signing_key(target, workspace=workspace)
    assert loaded is not None
    return loaded


def load_signing_key(path: Path | None = None, *, workspace: Path | None = None) -> SigningKey | None:
    """The configured private key, or ``None`` when none is configured.

    A key that is configured but unreadable, malformed, or inside the workspace is an error,
    never a silent "unsigned": an operator who set up signing must not lose it unnoticed.
    """
    explicit = path is not None or bool(os.environ.get(ENV_SIGNING_KEY))
    target = (path or default_key_path()).expanduser()
    if not target.exists():
        if explicit:
            raise TreasureError("KEY_MISSING", f"no signing key at {target}", path=str(target))
        return None
    if _inside(target, workspace):
        raise TreasureError("KEY_IN_WORKSPACE", f"the signing key {target} is inside the workspace",
                            path=str(target))
    serialization, ed25519 = _crypto()
    try:
        data = target.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TreasureError("KEY_INVALID", f"{target} is not a readable PEM private key ({exc})",
                            path=str(target)) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TreasureError("KEY_INVALID", f"{target} is not an Ed25519 key", path=str(target))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(target, fingerprint(raw), key)


def load_verify_key(*, workspace: Path | None = None) -> VerifyKey | None:
    """``TREASURE_VERIFY_KEY`` (public PEM) if set, else the public half of the signing key."""
    env = os.environ.get(ENV_VERIFY_KEY)
    if env:
        serialization, ed25519 = _crypto()
        target = Path(env).expanduser()
        try:
            pub = serialization.load_pem_public_key(target.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise TreasureError("KEY_INVALID", f"{target} is not a readable PEM public key ({exc})",
                                path=str(target)) from exc
        if not isinstance(pub, ed25519.Ed25519PublicKey):
            raise TreasureError("KEY_INVALID", f"{target} is not an Ed25519 public key", path=str(target))
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey(fingerprint(raw), pub, fingerprint(raw))
    signing = load_signing_key(workspace=workspace)
    return None if signing is None else signing.public()


def public_pem(key: SigningKey) -> bytes:
    """The public half as PEM, for `treasure keys show --public` and verifier-only hosts."""
    serialization, _ = _crypto()
    return bytes(key._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo))
