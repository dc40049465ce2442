namespace RnnFunctional.Kernels;

/// <summary>Instruction-set variant of a kernel (<see cref="Gemm"/>, <see cref="Elementwise"/>), chosen once at start-up.</summary>
internal enum SimdPath
{
    /// <summary>Plain scalar loops; available on every machine.</summary>
    Scalar,

    /// <summary>256-bit vectors (AVX2, with fused multiply-add for the products).</summary>
    Vector256,

    /// <summary>512-bit vectors (AVX-512).</summary>
    Vector512,
}
