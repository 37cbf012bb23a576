-- The secret that keys a rollout's device order with its id (NewPlan),
-- drawn by the engine at creation; '' for rollouts stored before it existed,
-- whose order is keyed by the id alone.
ALTER TABLE rollouts ADD COLUMN plan_secret TEXT NOT NULL DEFAULT '';
