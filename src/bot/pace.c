/* pace.c - the sender's slots (pace.h). */
#include "bot/pace.h"

#include "core/banned.h"

int64_t myna_pace_gap_us(double mps)
{
    int64_t gap = (int64_t)(1e6 / mps);

    return (double)gap * mps < 1e6 ? gap + 1 : gap;
}

int64_t myna_pace_next_us(int64_t next_us, int64_t now_us, int64_t gap_us)
{
    int64_t credit = gap_us > MYNA_PACE_CATCH_UP_US ? gap_us : MYNA_PACE_CATCH_UP_US;

    /* gap_us after the slot taken, not after now, unless that slot is
     * older than the credit */
    return (next_us > now_us - credit ? next_us : now_us - credit) + gap_us;
}

int64_t myna_pace_slot_us(int64_t next_us, int64_t now_us, int64_t gap_us)
{
    return next_us - now_us > gap_us ? now_us : next_us;
}
