"""glibc's getopt_long (posix/getopt.c, PERMUTE ordering), ported for its exact behaviour and messages: what
kcapi-hasher (cli/hasher.py) parses its arguments with, permutation, abbreviations, opterr and POSIXLY_CORRECT
included. The option tables are the caller's; so is where the messages are written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class LongOpt:
    name: str
    has_arg: int
    val: str  # "" for the ones kcapi-hasher handles by index (val 0)


@dataclass
class Getopt:
    argv: list[str]  # permuted in place, as glibc does
    prog: str  # argv[0], as glibc's messages show it
    write: Callable[[str], None]  # where the messages go (the caller's stderr, flushed as it writes)
    errors: bool = True  # opterr
    optind: int = 1
    optarg: Optional[str] = None
    longind: int = -1
    nextchar: Optional[str] = None  # the rest of the element being scanned ("" once used up)
    first_nonopt: int = 1
    # _getopt_initialize(): POSIXLY_CORRECT in the environment is REQUIRE_ORDER (the first operand ends the
    # options), else PERMUTE (options anywhere, operands moved after them)
    permute: bool = field(default_factory=lambda: "POSIXLY_CORRECT" not in os.environ)
    last_nonopt: int = 1
    messages: list[str] = field(default_factory=list)

    def _error(self, text: str) -> None:
        if self.errors:
            self.write(f"{self.prog}: {text}\n")

    def _exchange(self) -> None:
        # exchange(): the non-options [first_nonopt, last_nonopt) go after the options [last_nonopt, optind)
        a, b, c = self.first_nonopt, self.last_nonopt, self.optind
        self.argv[a:c] = self.argv[b:c] + self.argv[a:b]
        self.first_nonopt += c - b
        self.last_nonopt = c

    def _nonoption(self) -> bool:
        arg = self.argv[self.optind]
        return not arg.startswith("-") or arg == "-"

    def next(self, shortopts: str, longopts: list[LongOpt]) -> Optional[str]:
        """One getopt_long() call: an option letter, "" for a val-0 long option (longind says which), "?" for
        an error (already reported), None when the options are done (optind: the first operand)."""
        argc = len(self.argv)
        self.optarg = None
        if not self.nextchar:
            self.last_nonopt = min(self.last_nonopt, self.optind)
            self.first_nonopt = min(self.first_nonopt, self.optind)
            if self.permute:
                if self.first_nonopt != self.last_nonopt and self.last_nonopt != self.optind:
                    self._exchange()
                elif self.last_nonopt != self.optind:
                    self.first_nonopt = self.optind
                while self.optind < argc and self._nonoption():
                    self.optind += 1
                self.last_nonopt = self.optind
            if self.optind != argc and self.argv[self.optind] == "--":
                self.optind += 1
                if self.first_nonopt != self.last_nonopt and self.last_nonopt != self.optind:
                    self._exchange()
                elif self.first_nonopt == self.last_nonopt:
                    self.first_nonopt = self.optind
                self.last_nonopt = argc
                self.optind = argc
            if self.optind == argc:
                if self.first_nonopt != self.last_nonopt:
                    self.optind = self.first_nonopt
                return None
            if self._nonoption():  # only under REQUIRE_ORDER: PERMUTE has skipped them all
                return None
            arg = self.argv[self.optind]
            if arg.startswith("--"):
                self.nextchar = arg[2:]
                return self._long(longopts)
            self.nextchar = arg[1:]
        c, self.nextchar = self.nextchar[0], self.nextchar[1:]
        if not self.nextchar:
            self.optind += 1
        pos = shortopts.find(c)
        if pos < 0 or c in ":;":
            self._error(f"invalid option -- '{c}'")
            return "?"
        if shortopts[pos + 1 : pos + 2] == ":":
            if self.nextchar:
                self.optarg = self.nextchar
                self.optind += 1
            elif self.optind == argc:
                self._error(f"option requires an argument -- '{c}'")
                c = "?"
            else:
                self.optarg = self.argv[self.optind]
                self.optind += 1
            self.nextchar = None
        return c

    def _long(self, longopts: list[LongOpt]) -> str:
        text = self.nextchar or ""
        name, eq, value = text.partition("=")
        found = next((i for i, o in enumerate(longopts) if o.name == name), None)
        if found is None:
            ambiguous: list[int] = []
            for i, o in enumerate(longopts):
                if not o.name.startswith(name):
                    continue
                if found is None:
                    found = i
                    continue
                first = longopts[found]
                if (first.has_arg, first.val) != (o.has_arg, o.val):
                    ambiguous = ambiguous or [found]
                    ambiguous.append(i)
            if ambiguous:
                names = "".join(f" '--{longopts[i].name}'" for i in ambiguous)
                self._error(f"option '--{text}' is ambiguous; possibilities:{names}")
                self.nextchar = ""
                self.optind += 1
                return "?"
        if found is None:
            self._error(f"unrecognized option '--{text}'")
            self.nextchar = None
            self.optind += 1
            return "?"
        opt = longopts[found]
        self.optind += 1
        self.nextchar = None
        if eq:
            if not opt.has_arg:
                self._error(f"option '--{opt.name}' doesn't allow an argument")
                return "?"
            self.optarg = value
        elif opt.has_arg:
            if self.optind < len(self.argv):
                self.optarg = self.argv[self.optind]
                self.optind += 1
            else:
                self._error(f"option '--{opt.name}' requires an argument")
                return "?"
        self.longind = found
        return opt.val
