import AdaptIRCore
print(BLAS.coreName)
