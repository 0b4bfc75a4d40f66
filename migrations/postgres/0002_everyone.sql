-- A room everyone is in: each member joins it when their account is made, and no one leaves it.
-- A new group starts with one, #general.
ALTER TABLE rooms ADD COLUMN everyone boolean NOT NULL DEFAULT false;
