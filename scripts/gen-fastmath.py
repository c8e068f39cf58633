#!/usr/bin/env python3
"""Writes the SIMD8 and SIMD16 sections of Sources/Kernels/FastMath.swift from its SIMD4 section.

The functions are written out per concrete SIMD type on purpose (see the file's header: generic
SIMD code is left scalar by LLVM), so the three copies must stay identical but for the width.
Edit the SIMD4 section, then run this script; `--check` (run by `swift test`,
KernelsTests/FastMathGeneratorTests) exits 1 if the file is not what the script would write.
"""
import difflib
import pathlib
import sys

PATH = pathlib.Path(__file__).resolve().parent.parent / "Sources" / "Kernels" / "FastMath.swift"
MARK = "// MARK: - SIMD{}<Float>\n"
WIDTHS = (4, 8, 16)


def generate(text: str) -> str:
    start = text.index(MARK.format(4))
    end = text.index(MARK.format(8))
    header, template = text[:start], text[start:end]
    sections = [template.replace("SIMD4", f"SIMD{w}") for w in WIDTHS]
    return header + "".join(sections).rstrip("\n") + "\n"


def main() -> int:
    current = PATH.read_text(encoding="utf-8")
    wanted = generate(current)
    if "--check" in sys.argv[1:]:
        if current == wanted:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(True), wanted.splitlines(True), str(PATH), "generated"))
        print(f"{PATH} differs from scripts/gen-fastmath.py's output: edit the SIMD4 section, then run the script")
        return 1
    if current != wanted:
        PATH.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
