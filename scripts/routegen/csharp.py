"""A small reader for the C# that Umbraco's controllers are written in.

Not a compiler: it tokenises a file, finds class declarations (attributes, modifiers, base
class, members) and public methods (attributes, parameters, body text), and evaluates the
constant string expressions that route attributes use (literals, `$"…{X.Y}…"` interpolation,
`nameof(…)`, `+`, references to `const string` fields). Whatever it cannot read it reports
instead of guessing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

PUNCT2 = {"=>", "==", "!=", "&&", "||", "??", "?.", "::", "<=", ">=", "+=", "-="}
IDENT = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")


@dataclass
class Tok:
    kind: str  # ident | str | istr | char | num | punct
    text: str  # identifier / punctuation / decoded literal / raw interpolated body
    pos: int


class CSharpError(Exception):
    pass


def _read_string(src: str, i: int) -> tuple[str, str, int]:
    """Reads a string literal starting at src[i]; returns (kind, value, end)."""
    j = i
    interpolated = verbatim = False
    while src[j] in "$@":
        interpolated |= src[j] == "$"
        verbatim |= src[j] == "@"
        j += 1
    if src.startswith('"""', j):
        end = src.index('"""', j + 3)
        return ("istr" if interpolated else "str"), src[j + 3 : end], end + 3
    j += 1  # opening quote
    out = []
    depth = 0
    while True:
        c = src[j]
        if interpolated and c == "{":
            if src.startswith("{{", j) and depth == 0:
                out.append("{{")
                j += 2
                continue
            depth += 1
        elif interpolated and c == "}" and depth > 0:
            depth -= 1
        elif c == '"' and depth == 0:
            if verbatim and src.startswith('""', j):
                out.append('"')
                j += 2
                continue
            break
        elif c == '"' and depth > 0:
            # a string literal inside an interpolation hole
            _, inner, end = _read_string(src, j)
            out.append('"' + inner + '"')
            j = end
            continue
        elif c == "\\" and not verbatim:
            nxt = src[j + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "0": "\0"}.get(nxt, nxt))
            j += 2
            continue
        elif c == "\n" and not verbatim:
            raise CSharpError(f"unterminated string at {i}")
        out.append(c)
        j += 1
    return ("istr" if interpolated else "str"), "".join(out), j + 1


def tokenize(src: str) -> list[Tok]:
    """Tokens of a C# source file; comments and preprocessor lines are dropped."""
    toks: list[Tok] = []
    i, n = 0, len(src)
    line_start = True
    while i < n:
        c = src[i]
        if c == "\n":
            line_start = True
            i += 1
            continue
        if c in " \t\r\ufeff":
            i += 1
            continue
        if c == "#" and line_start:
            i = src.find("\n", i)
            i = n if i < 0 else i
            continue
        line_start = False
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            i = src.index("*/", i) + 2
        elif c == '"' or (c in "$@" and re.match(r'[$@]{1,2}"', src[i : i + 3])):
            kind, value, end = _read_string(src, i)
            toks.append(Tok(kind, value, i))
            i = end
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^'\\])'", src[i:])
            if not m:
                raise CSharpError(f"bad char literal at {i}")
            toks.append(Tok("char", m.group(1), i))
            i += m.end()
        elif m := IDENT.match(src, i):
            toks.append(Tok("ident", m.group(0).lstrip("@"), i))
            i = m.end()
        elif m := NUMBER.match(src, i):
            toks.append(Tok("num", m.group(0), i))
            i = m.end()
        else:
            two = src[i : i + 2]
            if two in PUNCT2:
                toks.append(Tok("punct", two, i))
                i += 2
            else:
                toks.append(Tok("punct", c, i))
                i += 1
    return toks


def matching(toks: list[Tok], i: int) -> int:
    """Index of the bracket closing the one at toks[i]."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    want = [pairs[toks[i].text]]
    j = i + 1
    while want:
        t = toks[j]
        if t.kind == "punct":
            if t.text in pairs:
                want.append(pairs[t.text])
            elif t.text == want[-1]:
                want.pop()
            elif t.text in (")", "]", "}"):
                raise CSharpError(f"unbalanced `{t.text}` at {t.pos}")
        j += 1
    return j - 1


def split_commas(toks: list[Tok]) -> list[list[Tok]]:
    """Splits a token list at commas that are not nested in brackets or generics."""
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "punct" and t.text in ("(", "[", "{", "<"):
            depth += 1
        elif t.kind == "punct" and t.text in (")", "]", "}", ">"):
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.text == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


@dataclass
class Attr:
    name: str  # without namespace and without the `Attribute` suffix
    args: list[list[Tok]]  # positional arguments
    named: dict[str, list[Tok]]


def parse_attrs(toks: list[Tok]) -> list[Attr]:
    """The attributes inside one `[...]` section (tokens between the brackets)."""
    out = []
    if len(toks) > 1 and toks[1].text == ":" and toks[0].kind == "ident":
        toks = toks[2:]  # target specifier: [return: ...], [assembly: ...]
    for part in split_commas(toks):
        k = 0
        name = []
        while k < len(part) and (part[k].kind == "ident" or part[k].text == "."):
            name.append(part[k].text)
            k += 1
        short = "".join(name).split(".")[-1]
        short = short[: -len("Attribute")] if short.endswith("Attribute") else short
        args: list[list[Tok]] = []
        named: dict[str, list[Tok]] = {}
        if k < len(part) and part[k].text == "(":
            end = matching(part, k)
            for arg in split_commas(part[k + 1 : end]):
                if len(arg) > 2 and arg[0].kind == "ident" and arg[1].text == "=":
                    named[arg[0].text] = arg[2:]
                else:
                    args.append(arg)
        out.append(Attr(short, args, named))
    return out


@dataclass
class Method:
    name: str
    attrs: list[Attr]
    modifiers: set[str]
    params: list[Tok]
    body: str  # source text of the body (empty for abstract methods)


@dataclass
class Class:
    name: str
    namespace: str
    outer: list[str]  # enclosing class names, outermost first
    attrs: list[Attr]
    modifiers: set[str]
    bases: list[str]  # simple names, generics stripped
    methods: list[Method] = field(default_factory=list)
    consts: dict[str, list[Tok]] = field(default_factory=dict)
    ctor_params: list[str] = field(default_factory=list)  # parameter type names
    path: str = ""

    @property
    def qualified(self) -> str:
        return ".".join([self.namespace, *self.outer, self.name]).strip(".")


MODIFIERS = {
    "public", "private", "protected", "internal", "static", "abstract", "sealed", "partial",
    "virtual", "override", "async", "new", "readonly", "const", "extern", "unsafe", "required",
    "file", "volatile",
}


def parse_file(path: str) -> list[Class]:
    """Every class (and record/struct) declared in the file, nested ones included."""
    with open(path, encoding="utf-8-sig") as f:
        src = f.read()
    toks = tokenize(src)
    classes: list[Class] = []
    namespace = ""
    i = 0
    # namespace: file-scoped or block
    for k, t in enumerate(toks):
        if t.kind == "ident" and t.text == "namespace":
            j = k + 1
            parts = []
            while toks[j].kind == "ident" or toks[j].text == ".":
                parts.append(toks[j].text)
                j += 1
            namespace = "".join(parts)
            break
    _parse_members(toks, 0, len(toks), src, namespace, [], classes, path)
    return classes


def _type_names(toks: list[Tok]) -> list[str]:
    names = []
    for part in split_commas(toks):
        idents = []
        for t in part:
            if t.text == "<":
                break
            if t.kind == "ident":
                idents.append(t.text)
        if idents:
            names.append(idents[-1])
    return names


def _parse_members(toks, i, end, src, namespace, outer, classes, path, owner=None):
    """Walks declarations between toks[i] and toks[end] (a namespace or class body)."""
    attrs: list[Attr] = []
    while i < end:
        t = toks[i]
        if t.text == "[":
            close = matching(toks, i)
            attrs.extend(parse_attrs(toks[i + 1 : close]))
            i = close + 1
            continue
        if t.text in (";", "}"):
            attrs = []
            i += 1
            continue
        if t.kind == "ident" and t.text in ("using", "namespace") and owner is None:
            j = i
            while toks[j].text not in (";", "{"):
                j += 1
            if toks[j].text == "{":  # block namespace: descend
                close = matching(toks, j)
                _parse_members(toks, j + 1, close, src, namespace, outer, classes, path)
                i = close + 1
            else:
                i = j + 1
            attrs = []
            continue
        # a declaration header: up to `{`, `(`, `;`, `=` or `=>` at depth 0
        j = i
        mods: set[str] = set()
        while toks[j].kind == "ident" and toks[j].text in MODIFIERS:
            mods.add(toks[j].text)
            j += 1
        if toks[j].kind == "ident" and toks[j].text in ("class", "record", "struct", "interface", "enum"):
            keyword = toks[j].text
            name = toks[j + 1].text
            k = _skip_generics(toks, j + 2)
            primary: list[Tok] = []
            if toks[k].text == "(":  # primary constructor
                close = matching(toks, k)
                primary = toks[k + 1 : close]
                k = close + 1
            bases: list[Tok] = []
            if toks[k].text == ":":
                k += 1
                while toks[k].text not in ("{", ";") and toks[k].text != "where":
                    bases.append(toks[k])
                    k += 1
            while toks[k].text not in ("{", ";"):
                k += 1
            cls = Class(name, namespace, list(outer), attrs, mods, _type_names(bases), path=path)
            if primary:
                cls.ctor_params = [p[0].text for p in split_commas(primary) if p]
            if keyword != "enum":
                classes.append(cls)
            if toks[k].text == "{":
                close = matching(toks, k)
                if keyword != "enum":
                    _parse_members(toks, k + 1, close, src, namespace, [*outer, name], classes, path, cls)
                i = close + 1
            else:
                i = k + 1
            attrs = []
            continue
        # member of a class
        k = j
        name_tok = None
        while k < end and toks[k].text not in ("{", "(", ";", "=", "=>"):
            if toks[k].kind == "ident":
                name_tok = toks[k]
            if toks[k].text == "<":
                k = _skip_generics(toks, k)
                continue
            if toks[k].text == "[":
                k = matching(toks, k) + 1
                continue
            k += 1
        stop = toks[k].text if k < end else ";"
        if stop == "(" and owner is not None and name_tok is not None and name_tok.kind == "ident":
            close = matching(toks, k)
            params = toks[k + 1 : close]
            m = close + 1
            while toks[m].text not in ("{", ";", "=>"):
                if toks[m].text == "(":
                    m = matching(toks, m)
                m += 1
            if toks[m].text == "{":
                body_end = matching(toks, m)
                body = src[toks[m].pos : toks[body_end].pos + 1]
                nxt = body_end + 1
            elif toks[m].text == "=>":
                e = m
                while toks[e].text != ";":
                    if toks[e].text in ("(", "[", "{"):
                        e = matching(toks, e)
                    e += 1
                body = src[toks[m].pos : toks[e].pos + 1]
                nxt = e + 1
            else:
                body = ""
                nxt = m + 1
            if name_tok.text == owner.name:
                owner.ctor_params = [_param_type(p) for p in split_commas(params)]
            else:
                owner.methods.append(Method(name_tok.text, attrs, mods, params, body))
            i = nxt
            attrs = []
            continue
        if stop == "=" and owner is not None and "const" in mods and name_tok is not None:
            e = k + 1
            while toks[e].text != ";":
                if toks[e].text in ("(", "[", "{"):
                    e = matching(toks, e)
                e += 1
            owner.consts[name_tok.text] = toks[k + 1 : e]
            i = e + 1
            attrs = []
            continue
        # anything else (fields, properties, events, indexers): skip to its end
        i = _skip_member(toks, k, end)
        attrs = []


def _skip_generics(toks: list[Tok], k: int) -> int:
    """Index after a generic argument list starting at toks[k] (`<…>`), or k when none does."""
    if toks[k].text != "<":
        return k
    depth = 0
    while True:
        depth += {"<": 1, ">": -1}.get(toks[k].text, 0)
        k += 1
        if depth == 0:
            return k


def _skip_to_semicolon(toks: list[Tok], e: int) -> int:
    while toks[e].text != ";":
        if toks[e].text in ("(", "[", "{"):
            e = matching(toks, e)
        e += 1
    return e + 1


def _skip_member(toks: list[Tok], k: int, end: int) -> int:
    """Index after a non-method member whose header stops at toks[k]."""
    if k >= end:
        return end
    stop = toks[k].text
    if stop == "{":  # property accessors, maybe followed by an initializer
        close = matching(toks, k)
        if close + 1 < end and toks[close + 1].text == "=":
            return _skip_to_semicolon(toks, close + 1)
        return close + 1
    if stop == "(":  # operator, delegate, indexer-like: skip the list, then the rest
        close = matching(toks, k)
        nxt = close + 1
        if toks[nxt].text == "{":
            return matching(toks, nxt) + 1
        return _skip_to_semicolon(toks, nxt)
    return _skip_to_semicolon(toks, k)


def _param_type(param: list[Tok]) -> str:
    idents = [t.text for t in param if t.kind == "ident" and t.text not in ("this", "params", "ref", "out", "in")]
    # `Type name` or `Type<T> name = default`
    head = []
    for t in param:
        if t.text == "=":
            break
        head.append(t)
    names = [t.text for t in head if t.kind == "ident"]
    return names[0] if len(names) >= 2 else (idents[0] if idents else "")


class Constants:
    """`const string` fields of every class read, resolvable by (partly) qualified name."""

    def __init__(self) -> None:
        self.by_qualified: dict[str, tuple[list[Tok], Class]] = {}
        self._cache: dict[str, str] = {}

    def add(self, classes: list[Class]) -> None:
        for c in classes:
            for name, expr in c.consts.items():
                self.by_qualified[f"{c.qualified}.{name}"] = (expr, c)

    def lookup(self, ref: str, context: Class | None) -> str:
        """The value of constant `ref` (`Constants.UdiEntityType.Document`, `EndpointTemplate`)."""
        candidates = []
        if context is not None:
            scope = context.qualified.split(".")
            while scope:
                q = ".".join([*scope, ref])
                if q in self.by_qualified:
                    candidates = [q]
                    break
                scope.pop()
        if not candidates:
            candidates = [q for q in self.by_qualified if q == ref or q.endswith("." + ref)]
        if len(candidates) != 1:
            raise CSharpError(f"constant `{ref}`: {len(candidates)} candidates {candidates[:4]}")
        q = candidates[0]
        if q not in self._cache:
            expr, cls = self.by_qualified[q]
            self._cache[q] = self.evaluate(expr, cls)
        return self._cache[q]

    def evaluate(self, toks: list[Tok], context: Class | None) -> str:
        """Evaluates a constant string expression."""
        parts = _split_plus(toks)
        out = []
        for p in parts:
            out.append(self._term(p, context))
        return "".join(out)

    def _term(self, toks: list[Tok], context: Class | None) -> str:
        if len(toks) >= 2 and toks[0].text == "(" and matching(toks, 0) == len(toks) - 1:
            return self.evaluate(toks[1:-1], context)
        if len(toks) == 1 and toks[0].kind == "str":
            return toks[0].text
        if len(toks) == 1 and toks[0].kind == "istr":
            return self._interpolate(toks[0].text, context)
        if toks and toks[0].text == "nameof":
            inner = [t.text for t in toks[2:-1] if t.kind == "ident"]
            return inner[-1]
        if all(t.kind == "ident" or t.text == "." for t in toks):
            return self.lookup("".join(t.text for t in toks), context)
        raise CSharpError("cannot evaluate `" + " ".join(t.text for t in toks) + "`")

    def _interpolate(self, body: str, context: Class | None) -> str:
        out = []
        i = 0
        while i < len(body):
            c = body[i]
            if body.startswith("{{", i):
                out.append("{")
                i += 2
            elif body.startswith("}}", i):
                out.append("}")
                i += 2
            elif c == "{":
                depth, j = 1, i + 1
                while depth:
                    depth += {"{": 1, "}": -1}.get(body[j], 0)
                    j += 1
                hole = body[i + 1 : j - 1]
                if ":" in hole and "?" not in hole:
                    hole = hole.split(":")[0]  # format specifier
                out.append(self.evaluate(tokenize(hole), context))
                i = j
            else:
                out.append(c)
                i += 1
        return "".join(out)


def _split_plus(toks: list[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        if depth == 0 and t.text == "+":
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def read_tree(root: str) -> list[Class]:
    """Parses every `.cs` file under `root` (sorted, so runs are reproducible)."""
    out: list[Class] = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".cs"):
                p = os.path.join(d, f)
                try:
                    out.extend(parse_file(p))
                except (CSharpError, IndexError, ValueError) as e:
                    raise CSharpError(f"{p}: {e}") from e
    return out
