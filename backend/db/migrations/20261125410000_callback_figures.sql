-- migrate:up

-- The 115 figures count tickets forwarded per tenant and period (backend.tickets.repository
-- .callback_figures). A forward is a status change to 'forwarded', once per ticket; this small
-- partial index turns that count into a range scan per tenant instead of a walk over every event.
-- (Callbacks on time vs late need nothing new: tickets_due gives the tickets due in the period,
-- ticket_callback_attempts_ticket the attempts of each.)
CREATE INDEX ticket_events_forwarded ON ticket_events (tenant_id, at)
    WHERE to_status = 'forwarded' AND kind = 'ticket.status_changed';

-- migrate:down
DROP INDEX ticket_events_forwarded;
