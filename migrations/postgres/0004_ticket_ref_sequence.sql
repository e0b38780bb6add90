-- Reference numbers from a sequence: it never repeats and, unlike a counter
-- row, does not serialise every transaction that opens a ticket.
CREATE SEQUENCE ticket_ref_seq;
SELECT setval('ticket_ref_seq', GREATEST((SELECT value FROM counters WHERE name = 'ticket_ref'), 1),
              (SELECT value FROM counters WHERE name = 'ticket_ref') > 0);
