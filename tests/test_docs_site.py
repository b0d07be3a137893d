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
