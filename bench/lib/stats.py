"""Statistics the benches share (bench/estimate-honesty, bench/mail-rehearsal):
quantiles as numpy interpolates them by default, and the exact
(Clopper-Pearson) interval of a binomial share. Standard library only; the
benches' helpers import it with PYTHONPATH=bench/lib."""
import math


def quantile(values, q):
    """Linear interpolation between order statistics (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def binom_cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k + 1))


def bisect(f, lo=0.0, hi=1.0):
    """The root of an increasing f on [lo, hi]."""
    for _ in range(100):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(x, n, level=0.90):
    """Exact two-sided interval for a binomial share x/n."""
    a = (1 - level) / 2
    # lower: P(X >= x | p) = a, i.e. 1 - cdf(x - 1) = a (increasing in p)
    lower = 0.0 if x == 0 else bisect(lambda p: (1 - binom_cdf(x - 1, n, p)) - a)
    # upper: P(X <= x | p) = a (decreasing in p)
    upper = 1.0 if x == n else bisect(lambda p: a - binom_cdf(x, n, p))
    return lower, upper


def pct(x):
    return "%.1f%%" % (100 * x)
