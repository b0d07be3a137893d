"""Shrink the PNG figures saved in notebooks: large ones are quantized to a 256-colour palette (a compressed PNG).

Run after saving outputs (`nbdev-test --save`): `python .ci/shrink_outputs.py nbs/*.ipynb nbs/repro/*.ipynb`.
Keeps the committed book small (the docs site shows these figures)."""
import base64, io, json, sys
from pathlib import Path

from PIL import Image

MIN_BYTES = 60_000


def shrink_png(b64: str) -> str:
    raw = base64.b64decode(b64)
    if len(raw) < MIN_BYTES: return b64
    im = Image.open(io.BytesIO(raw)).convert('RGB').quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO(); im.save(out, format='PNG', optimize=True)
    return base64.b64encode(out.getvalue()).decode() + '\n' if out.tell() < len(raw) else b64


def shrink_notebook(path: Path) -> tuple[int, int]:
    text = path.read_text()
    nb = json.loads(text)
    for cell in nb['cells']:
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            if 'image/png' in data:
                src = data['image/png']
                data['image/png'] = shrink_png(''.join(src) if isinstance(src, list) else src)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'
    if new != text: path.write_text(new)
    return len(text), len(new)


if __name__ == '__main__':
    for p in sys.argv[1:]:
        before, after = shrink_notebook(Path(p))
        if after < before: print(f'{p}: {before/1e6:.2f} MB -> {after/1e6:.2f} MB')
