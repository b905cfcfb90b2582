-- The query API pages by id within a tenant or an actor (issue #4 benchmark: 1M events).
CREATE INDEX security_events_tenant_id ON security_events (tenant_id, id);
CREATE INDEX security_events_actor_id ON security_events (actor, id);
