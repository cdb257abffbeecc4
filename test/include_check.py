#!/usr/bin/env python3
"""core/'s layers, checked over its #include lines (make include-check).

    tls/  <-  io/  <-  net/  <-  route/  <-  cmd/  <-  core/ root

(tls/ is TLS on memory BIOs; io/'s TLS filter puts it between the sockets
and their owners.)

A file under core/ may include (with #include "..."):
  - a header of its own folder;
  - the public header of a lower layer's folder (io/io.h, tls/tls.h,
    net/net.h, route/route.h, cmd/cmd.h), never another folder's private header
    (io/backend.h is io's own);
  - a leaf header of the root at or below its layer: log.h and core.h (any
    layer), base.h and metrics.h (net and above: they sit between io and
    net, and include nothing of core/ but io/io.h and other leaves); the
    root files that implement leaves (base.c, mq.c, snapshot.c, log.c) are
    held to the same level;
  - anything outside core/ (resp/, cluster/, config/, consensus/ are below
    core/).
Anything else is an upward include (or a reach into another folder's
private header): reported as file:line with the include and the rule, and
the exit status is 1.

Usage: include_check.py [--self-test] [repo root]   (default root: the
parent of this file's folder). --self-test checks a copy of core/ with one
include of each forbidden kind planted, and fails unless each is caught.
"""
import os
import re
import sys

LAYERS = {'tls': 0, 'io': 0.25, 'net': 1, 'route': 2, 'cmd': 3, '': 4}
NAMES = {v: (k or 'root') for k, v in LAYERS.items()}
NAMES[0.5] = 'base (leaf)'
PUBLIC = {'io': 'io.h', 'tls': 'tls.h', 'net': 'net.h', 'route': 'route.h', 'cmd': 'cmd.h'}
# Root headers every layer from `level` up may include.
LEAF = {'log.h': 0, 'core.h': 0, 'base.h': 0.5, 'metrics.h': 0.5}
# Root files that implement leaf headers: held to the leaf's level, so the
# leaves stay below what includes them.
LEAF_SOURCES = dict(LEAF, **{'base.c': 0.5, 'mq.c': 0.5, 'snapshot.c': 0, 'log.c': 0})
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(rel):
    """'net/link.c' -> 'net'; 'worker.c' -> ''."""
    parts = rel.split('/')
    return parts[0] if len(parts) > 1 else ''


def allowed_list(folder, level):
    if folder == '' and level < LAYERS['']:
        lower = ['core/%s/%s' % (f, PUBLIC[f]) for f, lv in LAYERS.items() if f and lv < level]
        return ', '.join(lower + ['core/' + h for h, lv in sorted(LEAF.items()) if lv <= level])
    own = 'core/%s' % (folder + '/' if folder else '')
    lower = ['core/%s/%s' % (f, PUBLIC[f]) for f, lv in LAYERS.items() if f and lv < level]
    leaves = ['core/' + h for h, lv in sorted(LEAF.items()) if lv <= level]
    return ', '.join(['%s*.h' % own] + lower + leaves)


def check_file(root, core, rel):
    errors = []
    folder = folder_of(rel)
    if folder not in LAYERS:
        return ['core/%s:1: folder core/%s/ is not a known layer (add it to %s)'
                % (rel, folder, os.path.relpath(__file__, root))]
    level = LAYERS[folder]
    if folder == '' and rel in LEAF_SOURCES:
        level = LEAF_SOURCES[rel]
    path = os.path.join(core, rel)
    with open(path, encoding='utf-8', errors='replace') as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            target = os.path.normpath(os.path.join(os.path.dirname(path), inc))
            trel = os.path.relpath(target, core)
            if trel.startswith('..'):
                continue  # outside core/: a lower module
            tfolder = folder_of(trel)
            why = None
            if tfolder not in LAYERS:
                why = 'core/%s is in no layer' % trel
            elif tfolder == folder and folder:
                pass
            elif tfolder == '' and level == LAYERS['']:
                pass  # the root's own files include any root header
            elif tfolder == '':
                if os.path.basename(trel) not in LEAF:
                    why = 'core/%s is the root\'s own header, above %s' % (trel, NAMES[level])
                elif LEAF[os.path.basename(trel)] > level:
                    why = 'leaf header core/%s starts at layer %s' % (
                        trel, NAMES[LEAF[os.path.basename(trel)]])
            elif LAYERS[tfolder] > level:
                why = 'upward: core/%s is layer %s, above %s' % (
                    trel, NAMES[LAYERS[tfolder]], NAMES[level])
            elif LAYERS[tfolder] == level:
                why = 'sideways: core/%s/ and core/%s/ are side by side' % (tfolder, folder)
            elif os.path.basename(trel) != PUBLIC[tfolder] or os.path.dirname(trel) != tfolder:
                why = 'core/%s is private to core/%s/ (its header is %s/%s)' % (
                    trel, tfolder, tfolder, PUBLIC[tfolder])
            if why:
                errors.append('core/%s:%d: #include "%s": %s; core/%s may include only %s'
                              % (rel, lineno, inc, why, rel, allowed_list(folder, level)))
    return errors


def check_tree(root):
    """Every error under root/core/, and how many files were read."""
    core = os.path.join(root, 'core')
    errors = []
    nfiles = 0
    for dirpath, _, files in sorted(os.walk(core)):
        for name in sorted(files):
            if name.endswith(('.c', '.h')):
                nfiles += 1
                errors += check_file(root, core, os.path.relpath(os.path.join(dirpath, name), core))
    return errors, nfiles


# --self-test: a copy of core/ with one include of each forbidden kind
# planted (file, line after which it goes, the include, a word of the
# message); the check must name each, at its line, and nothing else.
PLANTS = [
    ('net/link.c', '../route/route.h', 'upward'),
    ('route/dispatch.c', '../io/backend.h', 'private'),
    ('net/client.c', '../runtime.h', "root's own header"),
    ('base.c', 'net/net.h', 'upward'),
    ('tls/tls.c', '../io/io.h', 'upward'),
    ('cmd/cmd.h', '../worker.c', "root's own header"),
]


def self_test(root):
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(root, 'core'), os.path.join(tmp, 'core'),
                        ignore=shutil.ignore_patterns('*.o', '*.d'))
        errors, _ = check_tree(tmp)
        if errors:
            print('include-check self-test: the copy of core/ fails before planting:',
                  *errors, sep='\n', file=sys.stderr)
            return 1
        expect = []
        for rel, inc, word in PLANTS:
            path = os.path.join(tmp, 'core', rel)
            with open(path) as f:
                lines = f.readlines()
            at = max(k for k, line in enumerate(lines) if INCLUDE.match(line)) + 1
            lines.insert(at, '#include "%s"\n' % inc)
            with open(path, 'w') as f:
                f.writelines(lines)
            expect.append(('core/%s:%d: #include "%s"' % (rel, at + 1, inc), word))
        errors, _ = check_tree(tmp)
        bad = len(errors) != len(expect)
        for prefix, word in expect:
            hits = [e for e in errors if e.startswith(prefix + ':')]
            if len(hits) != 1 or word not in hits[0]:
                print('include-check self-test: no "%s" error for %s' % (word, prefix),
                      file=sys.stderr)
                bad = True
        if bad:
            print('include-check self-test failed; the check said:', *errors, sep='\n',
                  file=sys.stderr)
            return 1
    print('include-check self-test: %d planted includes caught, each at its line' % len(PLANTS))
    return 0


def main():
    args = sys.argv[1:]
    selftest = '--self-test' in args
    args = [a for a in args if a != '--self-test']
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if selftest:
        return self_test(root)
    errors, nfiles = check_tree(root)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print('include-check: %d include(s) break core/\'s layers '
              '(tls <- io <- net <- route <- cmd <- root)' % len(errors), file=sys.stderr)
        return 1
    print('include-check: %d files under core/, every include points down' % nfiles)
    return 0


if __name__ == '__main__':
    sys.exit(main())
