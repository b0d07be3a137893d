"""Two fixes around `smalldocs render`, called by `.ci/docs`.

`python .ci/site_fix.py subtitles _proc`: nbdev takes a chapter's description from the first `>` line of its title cell
only, so a subtitle written over several `>` lines was cut on the site. Put the whole subtitle back into the front
matter of each processed notebook.

`python .ci/site_fix.py offline SITE`: smalldocs links KaTeX from a CDN, and the cosmo theme imports a Google font.
Copy the vendored KaTeX (`.ci/vendor/katex`, MIT) into `SITE/site_libs/katex/` and point every page at it with a
relative path, and drop the font import (the theme's own fallback fonts are used), so the site makes no request
beyond its own folder and maths renders with no network.
"""
import json, re, shutil, sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KATEX_CDN = re.compile(r'https://cdn\.jsdelivr\.net/npm/katex@[0-9.]+/dist/')
REMOTE_IMPORT = re.compile(r'@import\s+url\(\s*["\']?(?:https?:)?//[^)]*\)\s*;?')


def full_subtitle(nb: dict) -> str | None:
    "The `>` lines right after the `# title` of the first markdown cell, joined into one line."
    md = next((c for c in nb['cells'] if c['cell_type'] == 'markdown'), None)
    if md is None: return None
    lines = ''.join(md['source']).splitlines()
    i = next((k for k, l in enumerate(lines) if re.match(r'#\s+\S', l)), None)
    if i is None: return None
    rest = [l for l in lines[i+1:]]
    while rest and not rest[0].strip(): rest.pop(0)
    sub = []
    for l in rest:
        if not l.startswith('>'): break
        sub.append(l.lstrip('>').strip())
    return ' '.join(s for s in sub if s) or None


def fix_subtitles(proc: Path, nbs: Path = ROOT/'nbs') -> list[str]:
    "Rewrite `description` in each processed notebook's front matter from its source notebook's whole subtitle."
    fixed = []
    for p in sorted(proc.rglob('*.ipynb')):
        src = nbs/p.relative_to(proc)
        if not src.exists(): continue
        sub = full_subtitle(json.loads(src.read_text()))
        nb = json.loads(p.read_text())
        raw = next((c for c in nb['cells'] if c['cell_type'] == 'raw'), None)
        if not sub or raw is None: continue
        text = ''.join(raw['source'])
        m = re.match(r'---\n(.*?)\n---', text, re.S)
        if not m: continue
        fm = yaml.safe_load(m.group(1)) or {}
        if fm.get('description') == sub: continue
        fm['description'] = sub
        raw['source'] = '---\n' + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True, width=10_000) + '---\n' + text[m.end():]
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False))
        fixed.append(str(p.relative_to(proc)))
    return fixed


def offline(site: Path, vendor: Path = ROOT/'.ci'/'vendor'/'katex') -> int:
    "Copy KaTeX into the site, make every page load it from there, drop remote CSS imports; the number of pages changed."
    for css in (site/'site_libs').rglob('*.css'):
        text = css.read_text(encoding='utf-8')
        if REMOTE_IMPORT.search(text): css.write_text(REMOTE_IMPORT.sub('', text), encoding='utf-8')
    dst = site/'site_libs'/'katex'
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(vendor, dst, ignore=shutil.ignore_patterns('README.md'))
    n = 0
    for page in site.rglob('*.html'):
        html = page.read_text(encoding='utf-8')
        if not KATEX_CDN.search(html): continue
        rel = '../' * (len(page.relative_to(site).parts) - 1) + 'site_libs/katex/'
        page.write_text(KATEX_CDN.sub(rel, html), encoding='utf-8')
        n += 1
    return n


if __name__ == '__main__':
    cmd, folder = sys.argv[1], Path(sys.argv[2])
    if cmd == 'subtitles': print(f'whole subtitles: {len(fix_subtitles(folder))} notebooks')
    elif cmd == 'offline': print(f'offline: KaTeX served from site_libs/katex on {offline(folder)} pages, no remote CSS import')
    else: sys.exit(f'unknown command {cmd!r}')
