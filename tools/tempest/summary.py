#!/usr/bin/env python3
"""Summarise a Tempest run from its subunit v2 stream.

    stestr last --subunit | summary.py [--selected IDS.txt] [--csv OUT.csv]

Prints the failed tests, then one closing line:

    tempest: N passed, N failed, N skipped

A class whose setUpClass was skipped or failed reports a single
`setUpClass (pkg.mod.Class)` result; with --selected (the ids that were
asked to run) every selected test of that class without a result of its
own is counted with the class's status, so the counts are per test.
"""

import argparse
import collections
import csv
import re
import sys

import subunit
import testtools

PASS = {'success', 'xfail'}
FAIL = {'fail', 'uxsuccess'}
SKIP = {'skip'}
CLASS_RE = re.compile(r'^(?:setUpClass|tearDownClass) \((.+)\)$')


def bare(test_id):
    return test_id.split('[', 1)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--selected')
    ap.add_argument('--csv')
    ap.add_argument('--max-failures', type=int, default=200)
    a = ap.parse_args()

    status = {}
    details = {}

    class Collect(testtools.StreamResult):
        def status(self, test_id=None, test_status=None, **kw):
            if test_id and test_status in PASS | FAIL | SKIP:
                # a later failure (e.g. tearDownClass) must not be hidden
                if status.get(test_id) not in FAIL:
                    status[test_id] = test_status

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer,
                                              non_subunit_name='stdout')
    result = Collect()
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()

    per_test = {}
    class_status = {}
    for tid, st in status.items():
        m = CLASS_RE.match(tid)
        if m:
            cls = m.group(1)
            if class_status.get(cls) not in FAIL:
                class_status[cls] = st
        else:
            per_test[bare(tid)] = st

    counted = dict(per_test)
    expanded = set()
    if a.selected:
        for line in open(a.selected):
            b = bare(line.strip())
            if not b or b in counted:
                continue
            cls = b.rsplit('.', 1)[0]
            if cls in class_status:
                counted[b] = class_status[cls]
                expanded.add(cls)
    for cls, st in class_status.items():
        # a class-level result not spread over its tests counts once
        # (e.g. a tearDownClass failure after its tests passed)
        if cls not in expanded:
            counted['setUpClass (%s)' % cls] = st

    n = collections.Counter()
    for st in counted.values():
        n['passed' if st in PASS else 'failed' if st in FAIL else
          'skipped'] += 1

    if a.csv:
        with open(a.csv, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['test', 'status'])
            for t in sorted(counted):
                w.writerow([t, counted[t]])

    failed = sorted(t for t, st in counted.items() if st in FAIL)
    if failed:
        print('Failed tests (%d):' % len(failed))
        for t in failed[:a.max_failures]:
            print('  ' + t)
        if len(failed) > a.max_failures:
            print('  ... %d more' % (len(failed) - a.max_failures))
    print('tempest: %d passed, %d failed, %d skipped'
          % (n['passed'], n['failed'], n['skipped']))
    return 1 if n['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
