"""Count code lines: non-blank, non-comment, non-docstring lines of the .py files under a folder.

    python benchmarks/code_lines.py [FOLDER ...] [--each]

The size measure of issue 10 (default folder: src/boternity/backends). SQL files are not counted.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of every module, class and function docstring."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                end = body[0].end_lineno or body[0].lineno
                lines.update(range(body[0].lineno, end + 1))
    return lines


def code_lines(source: str) -> int:
    """Lines holding at least one token that is not a comment, outside docstrings."""
    skip = docstring_lines(ast.parse(source))
    lines: set[int] = set()
    ignored = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in ignored or tok.type == tokenize.ENDMARKER:
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            if line not in skip:
                lines.add(line)
    return len(lines)


def main(argv: list[str]) -> int:
    each = "--each" in argv
    folders = [Path(a) for a in argv if a != "--each"] or [Path("src/boternity/backends")]
    total = 0
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            n = code_lines(path.read_text(encoding="utf-8"))
            total += n
            if each:
                print(f"{n:6d}  {path}")
    print(f"{total:6d}  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
