"""Write README.md from nbs/index.ipynb without Quarto (which cannot be installed on our machines).

Markdown cells are copied; code cells become fenced Python with their text outputs; cells marked `#| hide` are
dropped and `#|` directive lines removed. `python .ci/readme.py --check` exits 1 when README.md is stale.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by `python .ci/readme.py`: edit the notebook, not this file. -->\n\n"

def _text(src): return ''.join(src) if isinstance(src, list) else src

def _outputs(cell):
    "Text outputs (fenced by the caller), and Markdown outputs (kept as Markdown)."
    parts, markdown = [], []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream': parts.append(_text(o['text']))
        elif 'text/markdown' in o.get('data', {}): markdown.append(_text(o['data']['text/markdown']).strip())
        elif 'text/plain' in o.get('data', {}) and 'image/png' not in o.get('data', {}):
            parts.append(_text(o['data']['text/plain']))
    return ''.join(parts).rstrip(), markdown

def _readme_image(lines):
    "A figure output stands in the README as the committed image named by `#| readme-image: PATH CAPTION`."
    for l in lines:
        if l.strip().startswith('#| readme-image:'):
            path, _, caption = l.split(':', 1)[1].strip().partition(' ')
            return f"![{caption or 'figure'}]({path})"

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    blocks = []
    for cell in json.loads(Path(nb_path).read_text())['cells']:
        src = _text(cell['source'])
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        if cell['cell_type'] == 'markdown': blocks.append(src.strip()); continue
        code = '\n'.join(l for l in lines if not l.lstrip().startswith('#|')).strip()
        if code: blocks.append(f"```python\n{code}\n```")
        out, markdown = _outputs(cell)
        if out: blocks.append(f"```\n{out}\n```")
        blocks += markdown
        image = _readme_image(lines)
        if image: blocks.append(image)
    return HEADER + '\n\n'.join(b for b in blocks if b) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv[1:]:
        if not readme.exists() or readme.read_text() != text:
            sys.exit("README.md is stale: run `python .ci/readme.py` and commit README.md")
        print("README.md is up to date")
    else:
        readme.write_text(text); print(f"wrote {readme}")
