"""``.dockerignore`` semantics (engine.build.dockerignore) and the source selection that uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.build.context import SourceTree
from engine.build.dockerignore import IgnoreMatcher, compile_pattern, parse_patterns
from engine.build.errors import BuildError


def matcher(text: str) -> IgnoreMatcher:
    return IgnoreMatcher(parse_patterns(text))


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * does not cross /
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),  # ** matches zero directories too
        ("dir", "dir/deep/file", True),  # a parent match excludes the tree
        ("/dir", "dir/file", True),  # leading / is the context root
        ("./dir/../other", "other/x", True),  # cleaned like filepath.Clean
        ("dir/**", "dir/x/y", True),
        ("dir/**", "dir", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c]x", "bx", True),
        ("[^a-c]x", "bx", False),
        ("[^a-c]x", "dx", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
        ("*\n!keep.txt", "keep.txt", False),
        ("*\n!keep.txt", "other.txt", True),
        ("*.txt\n!keep.txt\nkeep.txt", "keep.txt", True),  # the last matching line wins
        ("docs\n!docs/README.md", "docs/README.md", False),
        ("docs\n!docs/README.md", "docs/other.md", True),
    ],
)
def test_patterns(patterns: str, path: str, excluded: bool) -> None:
    assert matcher(patterns).excluded(path) is excluded


def test_root_is_never_excluded() -> None:
    assert not matcher("*").excluded("")


def test_double_star_regex() -> None:
    assert compile_pattern("**/x").pattern == "^(.*/)?x$"
    assert compile_pattern("a/**").pattern == "^a/.*$"


def test_unterminated_class_is_an_error() -> None:
    with pytest.raises(BuildError, match="unterminated"):
        parse_patterns("[abc")


def _tree(root: Path) -> None:
    for rel, text in {
        "keep/a.txt": "a",
        "keep/sub/b.txt": "b",
        "keep/sub/c.log": "c",
        "secret/key": "k",
        "secret/public.pem": "p",
        "top.txt": "t",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_source_walk_honours_ignore_and_exceptions(tmp_path: Path) -> None:
    _tree(tmp_path)
    tree = SourceTree(tmp_path, matcher=matcher("**/*.log\nsecret\n!secret/public.pem"), label="build context")
    (root,) = tree.resolve(["."], keyword="COPY")
    rels = [e.rel for e in tree.entries(root)]
    assert "keep/sub/c.log" not in rels
    assert "secret/key" not in rels
    assert "secret/public.pem" in rels
    assert {"keep/a.txt", "keep/sub/b.txt", "top.txt"} <= set(rels)
    with pytest.raises(BuildError, match=r"excluded by \.dockerignore"):
        tree.resolve(["secret/key"], keyword="COPY")


def test_globs_and_missing_sources(tmp_path: Path) -> None:
    _tree(tmp_path)
    tree = SourceTree(tmp_path, label="build context")
    assert [s.rel for s in tree.resolve(["*.txt"], keyword="COPY")] == ["top.txt"]
    assert [s.rel for s in tree.resolve(["keep/*/*.txt"], keyword="COPY")] == ["keep/sub/b.txt"]
    assert [(s.rel, s.is_dir) for s in tree.resolve(["k*"], keyword="COPY")] == [("keep", True)]
    with pytest.raises(BuildError, match="no source files were specified"):
        tree.resolve(["*.none"], keyword="COPY")
    with pytest.raises(BuildError, match="file not found in build context"):
        tree.resolve(["nothere"], keyword="ADD")


def test_sources_cannot_escape_the_context(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "outside").write_text("host secret")
    (ctx / "link").symlink_to("/" + str(tmp_path / "outside").lstrip("/"))
    (ctx / "inside").write_text("ok")
    tree = SourceTree(ctx, label="build context")
    with pytest.raises(BuildError):
        tree.resolve(["../outside"], keyword="COPY")
    with pytest.raises(BuildError):
        tree.resolve(["link"], keyword="COPY")  # the absolute target is re-rooted in the context
    (ctx / "rel").symlink_to("inside")
    (source,) = tree.resolve(["rel"], keyword="COPY")
    assert source.path == ctx / "inside" and source.name == "rel"


def test_digest_follows_content_not_times(tmp_path: Path) -> None:
    _tree(tmp_path)
    tree = SourceTree(tmp_path, label="build context")
    sources = tree.resolve(["keep"], keyword="COPY")
    first = tree.digest(sources)
    (tmp_path / "keep/a.txt").touch()
    assert tree.digest(sources) == first
    (tmp_path / "keep/a.txt").write_text("changed")
    assert tree.digest(sources) != first
    (tmp_path / "keep/a.txt").chmod(0o600)
    changed = tree.digest(sources)
    (tmp_path / "keep/a.txt").chmod(0o644)
    assert tree.digest(sources) != changed
