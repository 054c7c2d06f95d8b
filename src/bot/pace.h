/* pace.h - the sender's pacing: one send per slot, slots a fixed gap apart.
 *
 * Times are microseconds of the wall clock: in whole milliseconds, 80 a
 * second became one send every 12 ms (83 a second), and anything from 501
 * to 1000 a second became 1000. The gap is rounded up, so over any stretch
 * of time the sends stay at or under the rate set. A pass of the sender
 * that comes late (the loop was busy) may make up for the slots it missed,
 * at most MYNA_PACE_CATCH_UP_US of them or one slot: so any one second
 * holds at most the rate plus that many sends. */
#ifndef MYNA_BOT_PACE_H
#define MYNA_BOT_PACE_H

#include <stdint.h>

#define MYNA_PACE_CATCH_UP_US 10000

/* The gap between two slots at mps (> 0) sends a second, rounded up. */
int64_t myna_pace_gap_us(double mps);
/* The slot after one send made at now_us (>= next_us, the slot it took). */
int64_t myna_pace_next_us(int64_t next_us, int64_t now_us, int64_t gap_us);
/* The slot to wait for at now_us: next_us, or now_us when next_us is more
 * than a gap ahead, which no send leaves: the wall clock was set back, and
 * nothing would go until it caught up again. */
int64_t myna_pace_slot_us(int64_t next_us, int64_t now_us, int64_t gap_us);

#endif
