/* xoshiro256** seeded through splitmix64, as its authors recommend. */
#include "core/rand.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void lv_rand_seed(struct lv_rand *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t lv_rand_next(struct lv_rand *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t lv_rand_below(struct lv_rand *r, uint64_t n)
{
    /* Lemire's multiply-shift; the bias is below 2^-32 for the n levee uses. */
    return (uint64_t)(((unsigned __int128)lv_rand_next(r) * n) >> 64);
}

double lv_rand_unit(struct lv_rand *r)
{
    return (double)(lv_rand_next(r) >> 11) * 0x1.0p-53;
}
