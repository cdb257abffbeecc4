#!/usr/bin/python3
"""
gen_command_table.py -- writes cluster/command_builtin.c, ringslot's built-in
command table, from the COMMAND reply of a real redis-server.

    /usr/bin/python3 cluster/gen_command_table.py [--redis-server PATH] [--out FILE]

It starts a throwaway redis-server on a free loopback port (no persistence,
its own temporary directory), asks COMMAND over a plain socket (RESP2, read
by the small reader below so nothing in the reply is re-interpreted), stops
exactly the process it started, and writes a C file that is sorted by name
and carries no timestamps: the same Redis gives byte-identical output, so the
generated file can be checked in and diffed.

    redis-server --port P ──COMMAND──► RESP2 tree ──► entries ──► C source
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

# Redis command flags the router cares about → cluster.h's enum cmd_flag.
CMD_FLAGS = {
    "write": "CMD_WRITE",
    "readonly": "CMD_READONLY",
    "blocking": "CMD_BLOCKING",
    "noscript": "CMD_NOSCRIPT",
    "pubsub": "CMD_PUBSUB",
    "movablekeys": "CMD_MOVABLE_KEYS",
    "admin": "CMD_ADMIN",
}
# Key-spec flags that change how keys are found → enum keyspec_flag.
KS_FLAGS = {
    "incomplete": "KS_FLAG_INCOMPLETE",
    "not_key": "KS_FLAG_NOT_KEY",
    "variable_flags": "KS_FLAG_VARIABLE_FLAGS",
}


# --------------------------------------------------------------------------
# A minimal RESP2 reader: enough for COMMAND and INFO.

class RespReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("redis-server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected RESP type byte %r" % kind)


def command(sock, reader, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return reader.read()


# --------------------------------------------------------------------------
# The throwaway server.

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, proc, deadline):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited with %d" % proc.returncode)
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fetch_commands(server):
    """Returns (version, COMMAND reply) from a fresh redis-server."""
    with tempfile.TemporaryDirectory(prefix="ringslot-gen-") as tmp:
        port = free_port()
        argv = [server, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", tmp,
                "--daemonize", "no", "--logfile", os.path.join(tmp, "log")]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)
        try:
            sock = connect(port, proc, time.monotonic() + 10)
            with sock:
                reader = RespReader(sock)
                info = command(sock, reader, "INFO", "server")
                reply = command(sock, reader, "COMMAND")
        finally:
            proc.terminate()  # only the process we started
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    version = "unknown"
    for line in info.splitlines():
        if line.startswith("redis_version:"):
            version = line.split(":", 1)[1].strip()
    return version, reply


# --------------------------------------------------------------------------
# COMMAND reply → plain Python entries.

def pairs(flat):
    """RESP2 maps arrive as flat [name, value, …] arrays."""
    if flat is None:
        return {}
    if len(flat) % 2:
        raise ValueError("odd-length map %r" % (flat,))
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def parse_spec(raw):
    d = pairs(raw)
    bs, fk = pairs(d["begin_search"]), pairs(d["find_keys"])
    bspec, fspec = pairs(bs.get("spec")), pairs(fk.get("spec"))
    spec = {"flags": sorted(KS_FLAGS[f] for f in d.get("flags", []) if f in KS_FLAGS)}
    if bs["type"] == "index":
        spec["begin"] = ("KS_BEGIN_INDEX", bspec["index"])
    elif bs["type"] == "keyword":
        spec["begin"] = ("KS_BEGIN_KEYWORD", bspec["keyword"], bspec["startfrom"])
    else:
        spec["begin"] = ("KS_BEGIN_UNKNOWN",)
    if fk["type"] == "range":
        spec["find"] = ("KS_FIND_RANGE", fspec["lastkey"], fspec["keystep"], fspec["limit"])
    elif fk["type"] == "keynum":
        spec["find"] = ("KS_FIND_KEYNUM", fspec["keynumidx"], fspec["firstkey"], fspec["keystep"])
    else:
        spec["find"] = ("KS_FIND_UNKNOWN",)
    return spec


def parse_entry(raw):
    name, arity, flags, first, last, step = raw[:6]
    return {
        "name": name.lower(),
        "arity": arity,
        "flags": [CMD_FLAGS[f] for f in sorted(flags) if f in CMD_FLAGS],
        "first": first, "last": last, "step": step,
        "specs": [parse_spec(s) for s in (raw[8] if len(raw) > 8 else [])],
        "subs": sorted((parse_entry(s) for s in (raw[9] if len(raw) > 9 and raw[9] else [])),
                       key=lambda e: e["name"]),
    }


# --------------------------------------------------------------------------
# C output.

def ident(name):
    return "".join(c if c.isalnum() else "_" for c in name)


def cstr(s):
    if not all(32 <= ord(c) < 127 for c in s):
        raise ValueError("unexpected character in %r" % s)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spec_line(s):
    b, f = s["begin"], s["find"]
    parts = [".begin = " + b[0]]
    if b[0] == "KS_BEGIN_INDEX":
        parts.append(".index = %d" % b[1])
    elif b[0] == "KS_BEGIN_KEYWORD":
        parts += [".keyword = " + cstr(b[1]), ".startfrom = %d" % b[2]]
    parts.append(".find = " + f[0])
    if f[0] == "KS_FIND_RANGE":
        parts += [".lastkey = %d" % f[1], ".keystep = %d" % f[2], ".limit = %d" % f[3]]
    elif f[0] == "KS_FIND_KEYNUM":
        parts += [".keynumidx = %d" % f[1], ".firstkey = %d" % f[2], ".keynumstep = %d" % f[3]]
    if s["flags"]:
        parts.append(".flags = " + " | ".join(s["flags"]))
    return "    {" + ", ".join(parts) + "},"


def info_lines(e, indent):
    pad = " " * indent
    out = [pad + "{.name = %s, .arity = %d, .flags = %s," % (
        cstr(e["name"]), e["arity"], " | ".join(e["flags"]) or "0")]
    out.append(pad + " .first_key = %d, .last_key = %d, .key_step = %d," % (
        e["first"], e["last"], e["step"]))
    tail = []
    if e["specs"]:
        tail.append(".nspecs = %d, .specs = ks_%s" % (len(e["specs"]), ident(e["name"])))
    if e["subs"]:
        tail.append(".nsubcommands = %d, .subcommands = sub_%s" % (len(e["subs"]), ident(e["name"])))
    if tail:
        out.append(pad + " " + ", ".join(tail) + ",")
    out[-1] = out[-1].rstrip(",") + "},"
    return out


def emit_specs(e, out, seen):
    if e["name"] in seen or ident(e["name"]) in seen:
        raise ValueError("duplicate command name %r" % e["name"])
    seen.add(ident(e["name"]))
    for sub in e["subs"]:
        emit_specs(sub, out, seen)
    if e["specs"]:
        out.append("static const struct keyspec ks_%s[] = {" % ident(e["name"]))
        out += [spec_line(s) for s in e["specs"]]
        out.append("};")


def render(version, entries):
    out = [
        "/*",
        " * command_builtin.c — GENERATED by cluster/gen_command_table.py from the",
        " * COMMAND reply of redis-server %s. Do not edit; re-run the generator." % version,
        " *",
        " * The built-in command table: what ringslot knows about Redis's commands",
        " * before (or without) asking the backend. Sorted by name; subcommands are",
        " * named \"container|sub\" as Redis reports them. command.c indexes it.",
        " */",
        '#include "cluster.h"',
        "",
        "/* Read by command.c, which declares these two itself (no private header). */",
        "extern const struct command_info command_builtin_list[];",
        "extern const size_t command_builtin_count;",
        "",
        "/* clang-format off */",
    ]
    seen = set()
    for e in entries:
        emit_specs(e, out, seen)
    for e in entries:
        if e["subs"]:
            out.append("static const struct command_info sub_%s[] = {" % ident(e["name"]))
            for sub in e["subs"]:
                out += info_lines(sub, 4)
            out.append("};")
    out.append("")
    out.append("const struct command_info command_builtin_list[] = {")
    for e in entries:
        out += info_lines(e, 4)
    out.append("};")
    out.append("const size_t command_builtin_count = "
               "sizeof(command_builtin_list) / sizeof(command_builtin_list[0]);")
    out.append("/* clang-format on */")
    return "\n".join(out) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--out", default=os.path.join(here, "command_builtin.c"))
    args = ap.parse_args()

    version, reply = fetch_commands(args.redis_server)
    entries = sorted((parse_entry(r) for r in reply), key=lambda e: e["name"])
    text = render(version, entries)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    nsubs = sum(len(e["subs"]) for e in entries)
    print("%s: %d commands, %d subcommands (redis %s)" % (args.out, len(entries), nsubs, version),
          file=sys.stderr)


if __name__ == "__main__":
    main()
