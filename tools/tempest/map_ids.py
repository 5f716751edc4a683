#!/usr/bin/env python3
"""Map a list of Tempest test ids onto the ids of the installed Tempest.

    map_ids.py --available ALL.txt --out RESOLVED.txt LIST.txt [LIST.txt ...]

ALL.txt is the output of `stestr list` in a Tempest workspace: full ids such
as `pkg.mod.Class.test_x[id-<uuid>,smoke]`.  LIST lines may be bare names
(`pkg.mod.Class.test_x`), full ids, or either followed by an `[id-<uuid>]`
tag; `#` starts a comment.  Each line resolves, in this order, by:

 1. exact full id;
 2. bare name (test moved its attributes only);
 3. idempotent id (`[id-<uuid>]` on the line): the test moved or was renamed;
 4. same method name inside the same `tempest.api.<service>` (or plugin top
    package), when every match carries one and the same idempotent id (a
    test moved to another module/class; an IPv4/IPv6 pair shares its id).

RESOLVED.txt gets the full current ids (what `stestr --load-list` needs).
A report goes to stderr; unresolved lines are listed and skipped.
Exit status: 0 if at least one line resolved, 1 otherwise.
"""

import argparse
import collections
import re
import sys

UUID_RE = re.compile(r'id-([0-9a-fA-F-]{36})')


def bare(test_id):
    return test_id.split('[', 1)[0].strip()


def uuid_of(text):
    m = UUID_RE.search(text)
    return m.group(1).lower() if m else None


def area(name):
    parts = name.split('.')
    if parts[0] == 'tempest' and len(parts) > 2:
        return '.'.join(parts[:3])          # tempest.api.compute
    return parts[0]                          # plugin package


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--available', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('lists', nargs='+')
    a = ap.parse_args()

    full = [l.strip() for l in open(a.available) if l.strip() and
            not l.startswith(('{', ' '))]
    full = [t for t in full if '.' in t]
    fullset = set(full)
    by_bare = collections.defaultdict(list)
    by_uuid = collections.defaultdict(list)
    by_method = collections.defaultdict(list)
    for t in full:
        b = bare(t)
        by_bare[b].append(t)
        u = uuid_of(t)
        if u:
            by_uuid[u].append(t)
        by_method[(area(b), b.rsplit('.', 1)[-1])].append(t)

    out, seen = [], set()
    moved, unresolved, total = [], [], 0

    def add(ids):
        for t in ids:
            if t not in seen:
                seen.add(t)
                out.append(t)

    for path in a.lists:
        for raw in open(path):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            total += 1
            name = bare(line)
            if line in fullset:
                add([line])
                continue
            if name in by_bare:
                add(by_bare[name])
                continue
            u = uuid_of(line)
            if u and u in by_uuid:
                add(by_uuid[u])
                moved.append((name, by_uuid[u]))
                continue
            cands = by_method.get((area(name), name.rsplit('.', 1)[-1]), [])
            ids = {uuid_of(t) for t in cands}
            if cands and len(ids) == 1 and None not in ids:
                add(cands)
                moved.append((name, cands))
                continue
            unresolved.append((name, cands))

    with open(a.out, 'w') as f:
        f.write(''.join(t + '\n' for t in out))

    print('map_ids: %d listed, %d resolved to %d current test ids, '
          '%d moved, %d unresolved'
          % (total, total - len(unresolved), len(out), len(moved),
             len(unresolved)), file=sys.stderr)
    for name, new in moved:
        print('  moved:      %s -> %s' % (name, ', '.join(bare(t) for t in
                                                          new)),
              file=sys.stderr)
    for name, cands in unresolved:
        hint = ''
        if cands:
            hint = ' (ambiguous: %s)' % ', '.join(bare(t) for t in cands)
        else:
            mod = name.rsplit('.', 2)[0]
            same = sorted({bare(t) for t in full if bare(t).startswith(
                mod + '.')})
            if same:
                hint = ' (same module now has: %s)' % ', '.join(
                    s.rsplit('.', 2)[-2] + '.' + s.rsplit('.', 1)[-1]
                    for s in same[:6])
        print('  unresolved: %s%s' % (name, hint), file=sys.stderr)
    return 0 if out else 1


if __name__ == '__main__':
    sys.exit(main())
