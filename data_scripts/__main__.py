"""`python -m data_scripts DATASET --root DIR [--archive FILE]`: get one real dataset ready, in one command."""
from __future__ import annotations

import argparse
import re
import sys

from . import DATASETS
from ._common import DataScriptError, prepare

PROG = 'data_scripts'


def _hex(n: int, algo: str):
    "An argparse type: a hex digest of `n` digits."
    def check(s: str) -> str:
        if not re.fullmatch(f'[0-9a-fA-F]{{{n}}}', s.strip()):
            raise argparse.ArgumentTypeError(f'{algo} must be {n} hexadecimal digits')
        return s.strip().lower()
    return check


def _epilog() -> str:
    "The datasets table for --help."
    rows = [f'  {d.name:<13} {d.title:<18} {d.approx_size}; licence: {d.licence}' for d in DATASETS.values()]
    return ('datasets:\n' + '\n'.join(rows) +
            '\n\nSee data_scripts/README.md for the layouts and the sources of the checksums.')


def build_parser() -> argparse.ArgumentParser:
    "The command-line parser."
    p = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_epilog(),
                                description='Download (or take), verify, safely extract and convert one real dataset '
                                            'into the MVTec AD layout that anomaly_tutor reads.')
    p.add_argument('dataset', choices=sorted(DATASETS), metavar='DATASET', help=', '.join(DATASETS))
    p.add_argument('--root', required=True, help='the folder this dataset goes into (one folder per dataset)')
    p.add_argument('--archive', help='use this already downloaded archive instead of downloading')
    p.add_argument('--download-dir', help='where to download the archive (default: ROOT/.downloads)')
    p.add_argument('--url', help='download from this URL (a mirror) instead of the recorded one')
    p.add_argument('--sha256', type=_hex(64, 'SHA-256'), help='expect this SHA-256 instead of the recorded checksum')
    p.add_argument('--md5', type=_hex(32, 'MD5'), help='expect this MD5 instead of the recorded checksum')
    p.add_argument('--force', action='store_true', help='prepare again, replacing what this dataset wrote before')
    p.add_argument('--delete-archive', action='store_true', help='delete the downloaded archive when done '
                   '(an --archive you passed is never deleted)')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    return p


def main(argv: list[str] | None = None) -> int:
    "Run the command line; problems the user can fix exit with status 2 and one `data_scripts: error:` line."
    args = build_parser().parse_args(argv)
    checksums = {a: h for a, h in (('sha256', args.sha256), ('md5', args.md5)) if h}
    try:
        prepare(DATASETS[args.dataset], args.root, args.archive, url=args.url, checksums=checksums or None,
                download_dir=args.download_dir, force=args.force, delete_archive=args.delete_archive, quiet=args.quiet)
    except DataScriptError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr); return 2
    except OSError as e:
        print(f'{PROG}: error: {" ".join(str(e).split())}', file=sys.stderr); return 2
    except KeyboardInterrupt:
        print(f'{PROG}: error: interrupted; run the same command again to resume', file=sys.stderr); return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
