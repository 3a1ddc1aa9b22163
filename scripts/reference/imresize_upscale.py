#!/usr/bin/env python3
# Prints the fixture of DegradationTests.testBicubicUpscaleMatchesAnIndependentPort (python3 scripts/reference/imresize_upscale.py).
# Independent numpy port of MATLAB imresize(img, s, 'bicubic') for upscaling (no antialiasing), uint8 per pass.
import numpy as np
def cubic(x):
    a=np.abs(x); a2=a*a; a3=a2*a
    return (1.5*a3-2.5*a2+1)*(a<=1)+(-0.5*a3+2.5*a2-4*a+2)*((a>1)&(a<=2))
def contributions(n, m, scale):
    x=np.arange(1,m+1,dtype=np.float64)
    u=x/scale+0.5*(1-1/scale)
    left=np.floor(u-2)
    P=6
    ind=left[:,None]+np.arange(P)[None,:]
    w=cubic(u[:,None]-ind)
    w=w/w.sum(1,keepdims=True)
    aux=np.concatenate([np.arange(1,n+1),np.arange(n,0,-1)])
    ind=aux[np.mod(ind-1,2*n).astype(int)]-1
    return ind,w
def resize_axis(img, axis, scale):
    n=img.shape[axis]; m=n*scale
    ind,w=contributions(n,m,scale)
    img=np.moveaxis(img.astype(np.float64),axis,0)
    out=np.einsum('mp,mp...->m...',w,img[ind])
    out=np.clip(np.floor(out+0.5),0,255)  # MATLAB: saturate, round half away from zero
    return np.moveaxis(out,0,axis).astype(np.uint8)
rng=np.random.default_rng(5)
img=rng.integers(0,256,size=(4,5,3),dtype=np.uint8)
out=resize_axis(resize_axis(img,0,2),1,2)
print("in",img.flatten().tolist())
print("out",out.flatten().tolist())
