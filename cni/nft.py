"""The plugin's one seam over nftables: apply a rule script atomically, read a table back as JSON.

Scripts go to ``nft -f -`` in the text syntax: nft 1.0.6 (Debian 12) cannot express the maps the
port mapper needs (concatenated ``address . port`` data) in its JSON input — it silently makes a
set, then crashes on the rule that uses it — while ``nft -j list`` output is fine. A script is one
transaction: either all of it applies or none does, so concurrent plugins never see half a chain.
Everything interpolated into a script is an IP printed by ``cni.ipnet``, an int, or a name checked
by ``identifier``/``comment`` here, so config text can never inject syntax.
"""

from __future__ import annotations

import posix  # os costs ~1 ms of start-up (cni/main.py)

from cni import jsonio, spawn

NFT_CANDIDATES = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft")  # runtimes may run plugins with a bare PATH
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_COMMENT_CHARS = _IDENTIFIER_CHARS | frozenset("-./:")
MAX_COMMENT = 127  # NFTNL_UDATA_COMMENT_MAXLEN is 128 with the terminating NUL


class NftError(OSError):
    """nft refused a script or could not run (an I/O failure to the CNI spec); carries nft's own text."""


def identifier(text: str) -> str:
    """A table/chain/set name made of letters, digits and '_' (anything else becomes '_')."""
    cleaned = "".join(c if c in _IDENTIFIER_CHARS else "_" for c in text)
    return cleaned if cleaned[:1].isalpha() else f"n_{cleaned}"


def comment(text: str) -> str:
    """A double-quoted comment; raises ValueError on characters outside a safe set or overlong text."""
    if len(text) > MAX_COMMENT or not set(text) <= _COMMENT_CHARS:
        raise ValueError(f"unsafe nftables comment {text!r}")
    return f'"{text}"'


def apply(script: str) -> None:
    """Run ``script`` as one nft transaction."""
    status, _out, err = _run(["-f", "-"], script)
    if status != 0:
        raise NftError(f"nft: {_first_error(err)}")


def chain_rules(family: str, table: str) -> dict[str, list[str]] | None:
    """Each chain's rules as nft prints them (``nft -t list table``: no set elements), or None if no table.

    Listing costs one nft run (~2 ms); a transaction that flushes and re-adds rules costs ~15 ms here
    (the kernel waits for an RCU grace period to free the old rules), so callers compare first and
    apply only what differs.
    """
    status, out, err = _run(["-t", "list", "table", family, table], "")
    if status != 0:
        if b"No such file or directory" in err:
            return None
        raise NftError(f"nft: {_first_error(err)}")
    chains: dict[str, list[str]] = {}
    current = None
    for raw in out.decode(errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            current = chains.setdefault(line[6:-1].strip(), [])
        elif line == "}":
            current = None
        elif current is not None and line and not line.startswith(("type ", "policy ", "comment ")):
            current.append(line)
    return chains


def list_table(family: str, table: str) -> list[dict] | None:
    """The table's objects as nft's JSON list (the "nftables" array), or None when it does not exist."""
    status, out, err = _run(["-j", "list", "table", family, table], "")
    if status != 0:
        if b"No such file or directory" in err:
            return None
        raise NftError(f"nft: {_first_error(err)}")
    try:
        document = jsonio.loads(out)
    except jsonio.JsonError as exc:
        raise NftError(f"nft printed unreadable JSON: {exc}") from None
    return document.get("nftables", []) if isinstance(document, dict) else []


def _run(args: list[str], script: str) -> tuple[int, bytes, bytes]:
    try:
        return spawn.run([_nft_path(), *args], stdin=script.encode())
    except spawn.SpawnError as exc:
        raise NftError(f"cannot run nft (is the nftables package installed?): {exc.strerror}") from None


def _nft_path() -> str:
    return next((path for path in NFT_CANDIDATES if posix.access(path, posix.X_OK)), "nft")


def _first_error(err: bytes) -> str:
    lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return "; ".join(errors[:3] or lines[:3]) or "failed without a message"
