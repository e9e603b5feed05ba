//! A terminal's time-outs: requests past their deadline are counted,
//! reversed when the run says so, and forgotten after the late window;
//! reversals are repeated until answered or given up.

use super::*;

impl Conn {
    /// Times out requests past their deadline (reversing them when the run
    /// says so), sends the reversals' repeats that are due, and forgets old
    /// time-outs.
    pub(super) async fn expire(
        &mut self,
        now: Instant,
        sender: &FrameSender,
    ) -> Result<(), String> {
        while let Some(&(deadline, stan, seq)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(slot) = self.slots.get_mut(&stan) else {
                continue;
            };
            if slot.seq != seq || slot.timed_out {
                continue;
            }
            slot.timed_out = true;
            let request = slot.request.take();
            let expected = slot.expected.clone();
            self.pending -= 1;
            self.tally.record(Outcome::TimedOut);
            self.forget
                .push_back((deadline + self.late_window, stan, seq));
            let reversed = match request {
                Some(request) => self.reverse(&request, sender).await?,
                None => false,
            };
            if let Some(record) = &self.shared.record {
                record.timed_out(&expected, reversed);
            }
        }
        for due in self.reversals.due(now) {
            match due {
                Due::Repeat(m) => self.send_message(&m, sender).await?,
                Due::GaveUp(p) => self.note_reversal(&p, ReversalEvent::Unanswered),
            }
        }
        self.tally.reversals = self.reversals.tally;
        while let Some(&(at, stan, seq)) = self.forget.front() {
            if at > now && self.forget.len() <= LATE_KEPT_MAX {
                break;
            }
            self.forget.pop_front();
            if self.slots.get(&stan).is_some_and(|s| s.seq == seq) {
                self.slots.remove(&stan);
            }
        }
        Ok(())
    }

    /// Sends the reversal of `request`; false when too many are pending.
    pub(super) async fn reverse(
        &mut self,
        request: &Message,
        sender: &FrameSender,
    ) -> Result<bool, String> {
        let Some(kind) = self.shared.reversal else {
            return Ok(false);
        };
        if !self.reversals.admit() {
            return Ok(false);
        }
        let stan = self.free_stan();
        let t = Civil::from_system_time(SystemTime::now());
        let de7 = format!(
            "{:02}{:02}{:02}{:02}{:02}",
            t.month, t.day, t.hour, t.minute, t.second
        );
        let rev = crate::sim::reversal::reversal_of(&self.shared.spec, request, kind, stan, &de7);
        self.send_message(&rev, sender).await?;
        let original = Original::of(request);
        if let Some(record) = &self.shared.record {
            let (mti, rev_stan) = (rev.mti().to_string(), rev.get_str(11).unwrap_or(""));
            record.reversal(&original, &mti, rev_stan, ReversalEvent::Sent);
        }
        self.reversals.sent(stan, rev, original, Instant::now());
        Ok(true)
    }

    pub(super) fn note_reversal(&self, p: &Pending, event: ReversalEvent) {
        if let Some(record) = &self.shared.record {
            let mti = p.message.mti().to_string();
            let stan = p.message.get_str(11).unwrap_or("");
            record.reversal(&p.original, &mti, stan, event);
        }
    }
}
