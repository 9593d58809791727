#!/usr/bin/env python3
"""Translate a .cu file to C++ for the CPU execution backend (PW_CUDA=EMU, runtime/cuda_emu/emu.h):
  K<<<grid, block[, smem[, stream]]>>>(args)  ->  ::emu::launch(::emu::LaunchCfg(...), &K or nullptr, "K", [&] { K(args); })
  extern __shared__ [__align__(n)] T name[];   ->  T* name = static_cast<T*>(::emu::dynamic_smem());
Everything else is left to the macros of emu.h. Line numbers are kept (#line + no added lines)."""
import re
import sys


def match_back_angle(s, j):
    """s[j] == '>': index of the matching '<' scanning backwards."""
    depth = 0
    while j >= 0:
        if s[j] == '>':
            depth += 1
        elif s[j] == '<':
            depth -= 1
            if depth == 0:
                return j
        j -= 1
    raise ValueError("unbalanced template arguments before <<<")


def match_paren(s, i):
    """s[i] == '(': index of the matching ')'."""
    depth = 0
    k = i
    while k < len(s):
        c = s[k]
        if c in '"\'':
            q = c
            k += 1
            while s[k] != q:
                k += 2 if s[k] == '\\' else 1
        elif c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0:
                return k
        k += 1
    raise ValueError("unbalanced parentheses after >>>")


def kernels_and_templates(src):
    names, templated = set(), set()
    for m in re.finditer(r'__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(', src):
        names.add(m.group(1))
        before = src[max(0, m.start() - 300):m.start()].rstrip()
        if re.search(r'template\s*<[^;{}]*>$', before):
            templated.add(m.group(1))
    return names, templated


def translate(src):
    _, templated = kernels_and_templates(src)
    src = re.sub(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([\w:]+(?:\s+[\w:]+)*?)\s+(\w+)\s*\[\s*\]\s*;',
                 lambda m: f'{m.group(1)}* {m.group(2)} = static_cast<{m.group(1)}*>(::emu::dynamic_smem());', src)
    out, pos = [], 0
    while True:
        i = src.find('<<<', pos)
        if i < 0:
            out.append(src[pos:])
            break
        j = i - 1
        while src[j].isspace():
            j -= 1
        if src[j] == '>':
            j = match_back_angle(src, j) - 1
        while j >= 0 and (src[j].isalnum() or src[j] in '_:'):
            j -= 1
        kstart = j + 1
        kernel = src[kstart:i].strip()
        e = src.find('>>>', i)
        cfg = src[i + 3:e]
        p = e + 3
        while src[p].isspace():
            p += 1
        assert src[p] == '(', f"expected ( after >>> at offset {p}"
        q = match_paren(src, p)
        args = src[p + 1:q]
        base = kernel.split('<')[0].split('::')[-1].strip()
        addressable = '<' in kernel or base not in templated
        kaddr = f'reinterpret_cast<const void*>(&{kernel})' if addressable else 'nullptr'
        name = ' '.join(kernel.split()).replace('"', '')
        out.append(src[pos:kstart])
        out.append(f'::emu::launch(::emu::LaunchCfg({cfg}), {kaddr}, "{name}", [&] {{ {kernel}({args}); }})')
        pos = q + 1
    return ''.join(out)


def main():
    inp, outp = sys.argv[1], sys.argv[2]
    src = open(inp).read()
    res = f'#line 1 "{inp}"\n' + translate(src)
    open(outp, 'w').write(res)


if __name__ == '__main__':
    main()
