// Package anomaly scores numeric series for anomalies, one sample at a time,
// with a small fixed state per series. It is pure computation: no I/O, no
// clocks (time is the sample's), no allocation per sample.
//
// # Method
//
// Each sample updates five cheap models of the series and measures how far
// the value is from each, in units of that model's robust sigma (1.25 times
// a mean absolute error that is winsorised at 4 sigma so one spike does not
// inflate it):
//
//   - step: the previous value (spikes, jumps), averaged over the last ~3
//     samples; a step back towards the long-run level counts only by what
//     overshoots it, so the return from a spike is not a second event;
//   - season: a Holt-Winters-like additive daily profile of 48 slots,
//     interpolated between slot centres, with its own error per slot
//     (winsorised at that slot's spread, so a slot that is always rough,
//     such as a sharp daily edge, learns that it is); it speaks after a
//     day of history and only while it explains the series better than a
//     flat level (a cycle that stops or shifts), and not on the first
//     sample it does;
//   - week: the season's prediction corrected by its mean error in each
//     of 84 two-hour slots of the week (each visit moves a slot half-way,
//     whatever the sampling interval); it speaks after two weeks of
//     history and only while it explains the series better than the daily
//     profile does by the same margin (a series with a weekly cycle: a
//     weekday that looks like a Sunday), otherwise it stays silent;
//   - level: the long-run level (EWMA, ~200 steps) against the value and
//     against the average of the last ~10 values (slow shifts, values out
//     of the usual range).
//
// Every deviation (capped at 12 sigma) is then compared with its own
// records: the largest value it has taken lately, decaying by 0.02% per
// step, and, for the step and level deviations, the largest it has taken
// at this time of day (the nearest slots, decaying by 0.5% per step
// there); one event raises a record to at most twice what it was; it counts by the smaller of the two ratios. The score is o/(1+o)
// with odds o = r⁴ of the largest ratio r over the channels, so 0.5 means
// "as large as the largest seen lately" and scores near 1 break the
// series' record by far. Judging a series by its own records rather than
// by a fixed sigma threshold lets one set of parameters serve calm and
// heavy-tailed series alike, and stops recurring behaviour (a nightly job,
// a noisy series' usual bursts) from alarming every time; the cap makes any
// huge deviation alarm again once the last one has faded. A series that
// alarms often is judged more strictly: the odds are divided by 1 + 0.25
// for each recent alarm beyond two (alarms counted with a memory of ~3000
// samples), so a series whose records fall every few days (social media
// volumes) stops alarming at every burst while a calm series still alarms
// at its first. After a score of 0.5 or more, further scores are halved
// for 200 steps unless they escalate past the alarm, so that an event is
// reported once. New series learn from scratch: averages start as plain
// means, records are kept from step 50, scores start at step 150.
//
// # Time, not samples
//
// Every rate, count and memory above is per step of 5 minutes, not per
// sample: a sample weighs the time since the previous one in steps, at
// most one. At 10-second samples (the agent's cadence) 30 samples weigh
// what one 5-minute sample does, the "previous value" is the average over
// the last step, and a record rises over a step rather than at once, so
// the warm-up (12.5 h), the refractory period (~17 h), the half-lives and
// the detections are the same at either cadence
// (TestSameDetectionsAt10sAnd5m). A sample never weighs more than one
// step, whatever the gap before it: slower series count in samples. A
// sample dated before the previous one weighs one second. After a gap (more
// than 8 times the series' usual interval, which follows the last ~10
// intervals) the step channel starts again from the new sample: the value
// before the gap is too old to measure a step from.
//
// # Robustness
//
// Values are clamped to ±1e30 so that no difference overflows; NaN and
// ±Inf are neither scored nor learnt. A jump beyond 12 sigmas moves the
// learnt levels by at most 100 sigmas, and raises a record to at most
// twice what it was, so one absurd value (1e12 on 100±1) is an alarm and
// blinds the series no longer than its refractory period.
//
// # Cost
//
// A Detector is StateBytes (1024) bytes with no pointers (the time-of-day
// records are kept in 16 bits each). A Set keeps each series in a slot of
// SlotBytes (1088: detector, key and last time, padded to whole cache
// lines) plus 8 to 16 bytes of index, all allocated up front and backed by
// huge pages where Linux allows. An update costs ~70 ns of arithmetic; with
// 100 000 series the rest is cache and TLB misses on the series' state,
// which Set.UpdateBatch overlaps across the series of a poll. `make
// bench-detect` (100 000 series) on a shared 2-core machine measured per
// CPU second, in two runs: 7.6 to 8.0 million updates one by one and 9.7
// to 12.8 million in batches when series come in poll order, 2.8 to 3.2 and
// 5.4 to 6.2 million in shuffled order (the worst case for caches); no
// allocation. (Earlier runs on a
// more loaded machine: 4.7 to 5.7 million in poll order.)
//
// # Quality
//
// On the development half of the Numenta Anomaly Benchmark (31 files,
// `make eval-nab`, through the agent's engine and defaults), strictly
// causally: standard profile 74.41 in-sample, 72.78 and 74.13
// cross-validated (threshold fitted on halves of each category, or on the
// other categories), 69.76 at the shipped threshold 0.5. Only the
// threshold is refitted in cross-validation; the constants were set by
// hand on these same files, so unseen series score lower.
package anomaly
