#!/usr/bin/env python3
"""Turns a .cu file into C++ for the CUDA emulator (tests/emulator/README.md).

The only CUDA syntax that is not C++ is the launch, `name<<<grid, block, smem, stream>>>(args);`. It
becomes `::ctxpool_emu::launch("name", [](auto... a) { name(a...); }, std::make_tuple(args), grid,
block, smem, stream);` on the same lines, so a compiler message's line number is the .cu file's (a
#line directive names the file). The arguments are evaluated once, at the launch, as with nvcc.

usage: translate_cu.py IN.cu OUT.cpp
"""
import os
import re
import sys

NAME = re.compile(r"[A-Za-z_][\w:]*(<.*>)?")


def matching_paren(text, open_at):
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def code_only(text):
    """text with comments and string or character literals blanked (same length), so that a '<<<'
    in a comment or a message is not taken for a launch."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def translate(text, path):
    code = code_only(text)
    out = []
    pos = 0
    while True:
        start = code.find("<<<", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        line_start = text.rfind("\n", 0, start) + 1
        name = text[line_start:start].strip()
        line = text.count("\n", 0, start) + 1
        if not NAME.fullmatch(name):
            sys.exit(f"{path}:{line}: a launch must start its line with the kernel's name, found {name!r}")
        config_end = code.find(">>>", start)
        if config_end < 0:
            sys.exit(f"{path}:{line}: '<<<' without '>>>'")
        config = text[start + 3:config_end]
        open_at = config_end + 3
        while text[open_at].isspace():
            open_at += 1
        close_at = matching_paren(code, open_at) if code[open_at] == "(" else -1
        if close_at < 0 or not text[close_at + 1:].lstrip().startswith(";"):
            sys.exit(f"{path}:{line}: expected '(arguments);' after '>>>'")
        args = text[open_at + 1:close_at]
        between = "\n" * text.count("\n", config_end + 3, open_at)  # keeps the line count
        indent = text[line_start:start][:len(text[line_start:start]) - len(text[line_start:start].lstrip())]
        out.append(text[pos:line_start])
        out.append(f'{indent}::ctxpool_emu::launch("{name}", [](auto... a) {{ {name}(a...); }}, '
                   f'std::make_tuple({between}{args}), {config})')
        pos = close_at + 1


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        text = f.read()
    result = f'#line 1 "{os.path.abspath(src)}"\n' + translate(text, src)
    tmp = dst + ".tmp"
    with open(tmp, "w") as f:
        f.write(result)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main()
