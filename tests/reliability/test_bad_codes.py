"""Code arrays that must not decode: each is one clear error naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

import vqtok
from vqtok.errors import VqtokError
from vqtok.files.codes import CodeFile

CASES = {
    "float codes": (np.zeros((1, 20), np.float32), "codes must be integers"),
    "negative code": (np.full((1, 20), -1, np.int16), "code -1 in codebook 0 lies outside"),
    "code past the codebook": (np.full((1, 20), 10**6, np.int64), "lies outside"),
    "more codebooks than the model": (np.zeros((9, 20), np.int16), "do not fit this model"),
    "empty": (np.zeros((1, 0), np.int16), "do not fit this model"),
    "three axes": (np.zeros((1, 2, 20), np.int16), "do not fit this audio model"),
    "boolean": (np.zeros((1, 20), bool), "codes must be integers"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_code_arrays_are_refused(audio_model, case):
    array, message = CASES[case]
    tok = vqtok.load(audio_model)
    with pytest.raises(VqtokError, match=message):
        tok.decode(CodeFile.bare(array))
