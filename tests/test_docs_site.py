"""The docs site: built offline by `.ci/docs`, opened in headless Chromium from a local server.

Chromium comes from Debian's `chromium` package (`.ci/run` installs it). Without it the test is skipped locally and
fails on CI. Screenshots are kept under runs/docs/ as CI artifacts."""
import functools, os, re, shutil, subprocess, threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars']


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_docs'
    res = subprocess.run(['bash', str(ROOT/'.ci'/'docs'), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


@pytest.fixture(scope='module')
def server(site):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(site))
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(); self.links = []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ('href', 'src') and v: self.links.append(v)


def _internal_targets(page: Path):
    p = _Links(); p.feed(page.read_text(errors='replace'))
    for link in p.links:
        u = urlparse(link)
        if u.scheme or u.netloc or link.startswith(('#', 'mailto:', 'javascript:', 'data:')): continue
        yield link, unquote(u.path)


def test_no_broken_internal_link(site):
    pages = list(site.rglob('*.html'))
    assert len(pages) >= 5
    broken = []
    for page in pages:
        for link, path in _internal_targets(page):
            target = (site/path.lstrip('/')) if path.startswith('/') else (page.parent/path)
            if path and not (target.exists() or (target/'index.html').exists()): broken.append(f'{page.name}: {link}')
    assert not broken, broken


def test_chapter_pages_have_figures(site):
    page = (site/'01_factory.html').read_text()
    imgs = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert imgs, 'the factory chapter shows no figure: are its notebook outputs committed?'
    for src in imgs:
        if not src.startswith('data:'): assert (site/src).exists(), src


def _chromium(*args, timeout=120):
    if not CHROMIUM:
        if os.environ.get('CI'): pytest.fail('chromium is not installed: .ci/run installs Debian\'s chromium package')
        pytest.skip('chromium not installed (apt-get install chromium)')
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('page,expect,figure', [('index.html', ['anomaly_tutor', 'Install and run'], False),
                                                ('01_factory.html', ['The factory dataset'], True)])
def test_browser_renders_page(server, tmp_path, page, expect, figure):
    shots = ROOT/'runs'/'docs'; shots.mkdir(parents=True, exist_ok=True)
    shot = shots/page.replace('.html', '.png')
    res = _chromium(f'--user-data-dir={tmp_path/"profile"}', '--window-size=1280,1000', f'--screenshot={shot}',
                    f'{server}/{page}')
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    dom = _chromium(f'--user-data-dir={tmp_path/"profile2"}', '--dump-dom', f'{server}/{page}').stdout
    title = re.search(r'<title>(.*?)</title>', dom, re.S)
    assert title and 'anomaly_tutor' in title.group(1) or expect[0] in title.group(1)
    for text in expect: assert text in dom, text
    for entry in ('Data: the MVTec AD layout', 'The factory dataset', 'Metrics'):
        assert entry in dom, f'sidebar entry {entry!r} missing'
    if figure: assert '<img' in dom, 'no figure on the page'


# ---- offline maths, whole subtitles, code without sideways scrolling (issue 21)

MATHS_PAGE, MATHS_NB = '30_weighting.html', '30_weighting.ipynb'   # display and inline equations, long code lines
_TAG_SRC = re.compile(r'<(script|img|iframe|source|link)\b([^>]*)>', re.I)


def _site_fix():
    import importlib.util
    spec = importlib.util.spec_from_file_location('site_fix', ROOT/'.ci'/'site_fix.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _remote_refs(site: Path) -> list[str]:
    "Scripts, stylesheets, icons, images and CSS imports or fonts the site would fetch from outside its own folder."
    out = []
    for page in site.rglob('*.html'):
        html = page.read_text(errors='replace')
        for tag, attrs in _TAG_SRC.findall(html):
            if tag.lower() == 'link' and not re.search(r'rel="[^"]*(stylesheet|icon|preload)', attrs): continue
            m = re.search(r'\b(?:src|href)="((?:https?:)?//[^"]+)"', attrs)
            if m: out.append(f'{page.name}: {m.group(1)}')
        out += [f'{page.name}: {u}' for u in re.findall(r"\bimport\b[^'\"]*['\"]((?:https?:)?//[^'\"]+)", html)]
    for css in site.rglob('*.css'):
        out += [f'{css.name}: {u}' for u in re.findall(r'(?:@import\s+|url\()\s*["\']?((?:https?:)?//[^"\')]+)', css.read_text(errors='replace'))]
    return out


def test_site_names_nothing_outside_itself(site):
    assert (site/'site_libs'/'katex'/'katex.min.js').exists() and (site/'site_libs'/'katex'/'LICENSE').exists()
    assert list((site/'site_libs'/'katex'/'fonts').glob('*.woff2'))
    assert _remote_refs(site) == []
    assert 'site_libs/katex/katex.min.js' in (site/MATHS_PAGE).read_text()


def test_remote_refs_check_can_fail(tmp_path):
    (tmp_path/'a.html').write_text('<link rel="stylesheet" href="https://cdn.example/k.css"><script src="x.js"></script>')
    (tmp_path/'t.css').write_text('@import url(https://fonts.example/css2?family=A;b);')
    assert [r.split(': ')[1] for r in _remote_refs(tmp_path)] == ['https://cdn.example/k.css', 'https://fonts.example/css2?family=A;b']


def _visible_text(dom: str) -> str:
    "The page's text without scripts, styles, code and KaTeX's TeX annotations."
    dom = re.sub(r'<(script|style|pre|code|annotation)\b.*?</\1>', ' ', dom, flags=re.S | re.I)
    return re.sub(r'<[^>]+>', ' ', dom)


def test_maths_renders_offline(server, tmp_path):
    "KaTeX (vendored) typesets the chapter's equations, and the browser asks nothing of any host but the local server."
    netlog = tmp_path/'netlog.json'
    dom = _chromium(f'--user-data-dir={tmp_path/"profile"}', f'--log-net-log={netlog}', '--virtual-time-budget=10000',
                    '--dump-dom', f'{server}/{MATHS_PAGE}').stdout
    assert dom.count('class="katex"') >= 10, 'equations were not typeset'
    assert 'katex-display' in dom, 'no display equation was typeset'
    text = _visible_text(dom)
    for raw in ('\\(', '\\)', '\\[', '$$'): assert raw not in text, f'raw TeX {raw!r} left on the page'
    requests = _page_requests(netlog)
    urls = {u for u, _ in requests}
    assert any(u.startswith(server) and 'katex.min.js' in u for u in urls), 'the vendored KaTeX was not loaded'
    assert any(u.startswith(server) and u.endswith('.woff2') for u in urls), 'no KaTeX font was loaded'
    # what the page asked for (the browser's own update and account pings carry no page origin)
    outside = sorted({u for u, origin in requests if origin.startswith(server) and not u.startswith(server)})
    assert outside == [], outside


def _page_requests(netlog: Path) -> list[tuple[str, str]]:
    "(url, initiating origin) of every request in a Chromium net log."
    import json
    text = netlog.read_text(errors='replace').rstrip()
    try: log = json.loads(text)
    except json.JSONDecodeError: log = json.loads(text.rstrip(',') + ']}')  # a log cut short at exit
    start = log['constants']['logEventTypes']['URL_REQUEST_START_JOB']
    return [(e['params']['url'], str(e['params'].get('initiator', ''))) for e in log['events']
            if e['type'] == start and 'url' in e.get('params', {})]


_PROBE = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="PAGE" style="width:1280px;height:1000px;border:0"></iframe>
<script>
document.getElementById('f').onload = () => {
  const d = document.getElementById('f').contentDocument;
  const pres = [...d.querySelectorAll('main pre')].filter(p => p.getClientRects().length);
  const wide = pres.filter(p => p.scrollWidth > p.clientWidth + 1);
  const out = document.createElement('output'); out.id = 'probe';
  out.textContent = JSON.stringify({pres: pres.length, wide: wide.map(p => p.textContent.slice(0, 60)),
                                    body: d.querySelector('main').clientWidth});
  document.body.appendChild(out);
};
</script></body></html>"""


def test_whole_subtitle_and_code_without_sideways_scrolling(site, server, tmp_path):
    "At a 1280-px window no code block of the chapter scrolls sideways; its subtitle of several `>` lines is whole."
    import html, json
    (site/'_probe.html').write_text(_PROBE.replace('PAGE', MATHS_PAGE))
    dom = _chromium(f'--user-data-dir={tmp_path/"profile"}', '--window-size=1300,1000', '--virtual-time-budget=10000',
                    '--dump-dom', f'{server}/_probe.html').stdout
    m = re.search(r'<output id="probe">(.*?)</output>', dom, re.S)
    assert m, dom[-2000:]
    probe = json.loads(html.unescape(m.group(1)))
    assert probe['pres'] >= 10 and probe['body'] < 1000, probe
    assert probe['wide'] == [], probe['wide']
    shots = ROOT/'runs'/'docs'; shots.mkdir(parents=True, exist_ok=True)
    _chromium(f'--user-data-dir={tmp_path/"profile2"}', '--window-size=1280,2400', '--virtual-time-budget=10000',
              f'--screenshot={shots/"30_weighting_1280.png"}', f'{server}/{MATHS_PAGE}')
    nb = json.loads((ROOT/'nbs'/MATHS_NB).read_text())
    title_cell = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    assert len([l for l in title_cell.splitlines() if l.startswith('>')]) > 1, 'the check needs a multi-line subtitle'
    subtitle = _site_fix().full_subtitle(nb)
    page = html.unescape((site/MATHS_PAGE).read_text())
    assert f'content="{subtitle}"' in page, 'the description was cut'
    assert page.count(subtitle[-60:]) >= 2, 'the subtitle under the title was cut'  # its end, past any smart quotes
