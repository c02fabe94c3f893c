-- migrate:up

-- Webhook signing secrets are stored sealed (AES-256-GCM, backend/sealing.py) from now on. Rows
-- written before still hold the plain `whsec_…` text: they keep working and the ticket worker
-- seals them on its next purge round (as it re-seals values of a retired key).
ALTER TABLE ticket_webhook_secrets DROP CONSTRAINT ticket_webhook_secrets_secret_check;
ALTER TABLE ticket_webhook_secrets
    ADD CONSTRAINT ticket_webhook_secrets_secret_check CHECK (secret ~ '^(whsec_|sealed:v1:)');

-- migrate:down
-- Sealed rows cannot be turned back into plain text here: they are dropped (rotate afterwards).
DELETE FROM ticket_webhook_secrets WHERE secret LIKE 'sealed:%';
ALTER TABLE ticket_webhook_secrets DROP CONSTRAINT ticket_webhook_secrets_secret_check;
ALTER TABLE ticket_webhook_secrets ADD CONSTRAINT ticket_webhook_secrets_secret_check CHECK (secret ~ '^whsec_');
