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
//   - level: the long-run level (EWMA, ~200 samples) against the value and
//     against the average of the last ~10 values (slow shifts, values out
//     of the usual range).
//
// Every deviation (capped at 12 sigma) is then compared with its own
// records: the largest value it has taken lately, decaying by 0.02% per
// sample, and, for the step and level deviations, the largest it has taken
// at this time of day (the nearest slots, decaying by 0.5% per sample
// there); it counts by the smaller of the two ratios. The score is o/(1+o)
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
// for 200 samples unless they escalate past the alarm, so that an event is
// reported once. New series learn from scratch: averages start as plain
// means, records are kept from sample 50, scores start at sample 150.
//
// # Cost
//
// A Detector is StateBytes (1008) bytes with no pointers (the time-of-day
// records are kept in 16 bits each). A Set keeps each series in a slot of
// SlotBytes (1088: detector, key and last time, padded to whole cache
// lines) plus 8 to 16 bytes of index, all allocated up front and backed by
// huge pages where Linux allows. An update costs ~70 ns of arithmetic; with
// 100 000 series the rest is cache and TLB misses on the series' state,
// which Set.UpdateBatch overlaps across the series of a poll. `make
// bench-detect` (100 000 series) on a shared, loaded 2-core machine
// measured per CPU second: 4.7 to 5.6 million updates one by one and 5.1 to
// 5.7 million in batches when series come in poll order, 2.4 to 2.7 and 3.1
// to 3.3 million in shuffled order (the worst case for caches); no
// allocation.
//
// # Quality
//
// On the development half of the Numenta Anomaly Benchmark (31 files, see
// `make eval-nab`), strictly causally and with these constant parameters:
// standard profile 75.3, reward low FP 67.1, reward low FN 80.0.
package anomaly
