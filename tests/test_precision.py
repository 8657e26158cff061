"""trainer.precision=auto picks bf16-mixed only where the CPU has bf16 matrix instructions."""

from gan.precision import choose_precision, cpu_bf16_flags

AVX512_BF16 = "processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
AVX2_ONLY = "processor: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_flags_are_read_from_cpuinfo():
    assert cpu_bf16_flags(AVX512_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(AVX2_ONLY) == []


def test_auto_chooses_by_the_cpu_and_says_why():
    precision, why = choose_precision("auto", "cpu", AVX512_BF16)
    assert precision == "bf16-mixed" and "avx512_bf16" in why
    precision, why = choose_precision("auto", "cpu", AVX2_ONLY)
    assert precision == "32-true" and "no bf16" in why


def test_an_explicit_precision_is_kept():
    assert choose_precision("32-true", "cpu", AVX512_BF16)[0] == "32-true"
    assert choose_precision("bf16-mixed", "cpu", AVX2_ONLY)[0] == "bf16-mixed"
