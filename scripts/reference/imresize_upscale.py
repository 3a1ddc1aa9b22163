#!/usr/bin/env python3
# Prints the fixture of DegradationTests.testBicubicUpscaleMatchesAnIndependentPort (python3 scripts/reference/imresize_upscale.py).
# Independent numpy port of MATLAB imresize(img, s, 'bicubic') for upscaling (no antialiasing), uint8 per pass:
# matlab_imresize.py beside this file.
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matlab_imresize import imresize
rng=np.random.default_rng(5)
img=rng.integers(0,256,size=(4,5,3),dtype=np.uint8)
out=imresize(img,2)
print("in",img.flatten().tolist())
print("out",out.flatten().tolist())
