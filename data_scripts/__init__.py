"""Download, verify and prepare the real benchmarks in the layout `anomaly_tutor.data` reads.

Run from the repository root: `python -m data_scripts DATASET --root DIR [--archive FILE]`. One module per dataset
(`mvtec_ad`, `visa`, `btad`, `ksdd2`, `magnetic_tile`, `mvtec_3d`, `dtd`) records its archive (URL, name, checksum
and where they come from) and its conversion; `_common` holds the shared steps (download, checksum, safe extraction,
marker). The library itself never downloads anything.
"""
from . import btad, dtd, ksdd2, magnetic_tile, mvtec_3d, mvtec_ad, visa
from ._common import DataScriptError, Dataset, prepare, safe_extract

DATASETS = {m.DATASET.name: m.DATASET for m in (mvtec_ad, visa, btad, ksdd2, magnetic_tile, mvtec_3d, dtd)}

__all__ = ['DATASETS', 'DataScriptError', 'Dataset', 'prepare', 'safe_extract']
