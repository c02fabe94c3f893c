-- migrate:up
-- The agreement governs the service (issue 17 §3, decision 029). Routing's view of a tenant
-- carries the agreements under which it is a client, so a town whose agreement has ended is
-- refused with its own reason and its calls are no longer a client's; a service number says
-- whether the centre answers it on the town's own closing days (Rosenmontag: the town hall is
-- shut, the centre most useful), instead of always closing.
ALTER TABLE service_numbers ADD COLUMN answer_on_closing_days boolean NOT NULL DEFAULT false;

DROP FUNCTION routing_numbers(uuid[], text);
CREATE FUNCTION routing_numbers(p_tenants uuid[], p_dialled text)
    RETURNS TABLE (tenant_id uuid, id uuid, number text, kind text, purpose text, department_id uuid,
                   greeting text, routing_window text, valid_from date, valid_until date,
                   answer_on_closing_days boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_numbers');
BEGIN
    RETURN QUERY
        SELECT n.tenant_id, n.id, n.number, n.kind, n.purpose, n.department_id, n.greeting,
               n.routing_window, lower(n.valid), upper(n.valid), n.answer_on_closing_days
        FROM service_numbers n
        WHERE (v_tenants IS NULL OR n.tenant_id = ANY (v_tenants))
          AND (p_dialled IS NULL OR n.span @> p_dialled);
END $$;

DROP FUNCTION routing_tenants(uuid[]);
CREATE FUNCTION routing_tenants(p_tenants uuid[])
    RETURNS TABLE (id uuid, slug text, name text, is_operator boolean, federal_state text,
                   time_zone text, service_hours jsonb, closing_days jsonb, departments jsonb,
                   absence_weekly jsonb, absence_dated jsonb, agreements jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_tenants');
BEGIN
    RETURN QUERY
        SELECT t.id, t.slug, t.name, t.is_operator, t.federal_state, t.time_zone, t.service_hours,
               coalesce((SELECT jsonb_agg(jsonb_build_object('day', c.day, 'name', c.name) ORDER BY c.day)
                         FROM closing_days c WHERE c.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', d.id, 'name', d.name, 'phone', d.phone,
                                                             'email', d.email) ORDER BY d.name)
                         FROM departments d WHERE d.tenant_id = t.id AND d.active), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('weekday', w.weekday, 'starts', w.starts,
                                                             'ends', w.ends) ORDER BY w.weekday, w.starts)
                         FROM absence_weekly w WHERE w.tenant_id = t.id AND w.person_id IS NULL), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('starts', lower(a.during), 'ends', upper(a.during))
                                          ORDER BY lower(a.during))
                         FROM absence_dated a WHERE a.tenant_id = t.id AND a.person_id IS NULL), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('operator', g.operator_tenant_id,
                                                             'starts', g.starts_on, 'ends', g.ends_on)
                                          ORDER BY g.starts_on)
                         FROM agreements g WHERE g.tenant_id = t.id), '[]')
        FROM tenants t
        WHERE (v_tenants IS NULL OR t.id = ANY (v_tenants)) AND t.status <> 'offboarded';
END $$;
REVOKE ALL ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]) TO bs_app;

-- migrate:down
DROP FUNCTION routing_tenants(uuid[]);
CREATE FUNCTION routing_tenants(p_tenants uuid[])
    RETURNS TABLE (id uuid, slug text, name text, is_operator boolean, federal_state text,
                   time_zone text, service_hours jsonb, closing_days jsonb, departments jsonb,
                   absence_weekly jsonb, absence_dated jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_tenants');
BEGIN
    RETURN QUERY
        SELECT t.id, t.slug, t.name, t.is_operator, t.federal_state, t.time_zone, t.service_hours,
               coalesce((SELECT jsonb_agg(jsonb_build_object('day', c.day, 'name', c.name) ORDER BY c.day)
                         FROM closing_days c WHERE c.tenant_id = t.id), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', d.id, 'name', d.name, 'phone', d.phone,
                                                             'email', d.email) ORDER BY d.name)
                         FROM departments d WHERE d.tenant_id = t.id AND d.active), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('weekday', w.weekday, 'starts', w.starts,
                                                             'ends', w.ends) ORDER BY w.weekday, w.starts)
                         FROM absence_weekly w WHERE w.tenant_id = t.id AND w.person_id IS NULL), '[]'),
               coalesce((SELECT jsonb_agg(jsonb_build_object('starts', lower(a.during), 'ends', upper(a.during))
                                          ORDER BY lower(a.during))
                         FROM absence_dated a WHERE a.tenant_id = t.id AND a.person_id IS NULL), '[]')
        FROM tenants t
        WHERE (v_tenants IS NULL OR t.id = ANY (v_tenants)) AND t.status <> 'offboarded';
END $$;
DROP FUNCTION routing_numbers(uuid[], text);
CREATE FUNCTION routing_numbers(p_tenants uuid[], p_dialled text)
    RETURNS TABLE (tenant_id uuid, id uuid, number text, kind text, purpose text, department_id uuid,
                   greeting text, routing_window text, valid_from date, valid_until date)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    v_tenants uuid[] := app_definer_tenants(p_tenants, 'routing_numbers');
BEGIN
    RETURN QUERY
        SELECT n.tenant_id, n.id, n.number, n.kind, n.purpose, n.department_id, n.greeting,
               n.routing_window, lower(n.valid), upper(n.valid)
        FROM service_numbers n
        WHERE (v_tenants IS NULL OR n.tenant_id = ANY (v_tenants))
          AND (p_dialled IS NULL OR n.span @> p_dialled);
END $$;
REVOKE ALL ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION routing_numbers(uuid[], text), routing_tenants(uuid[]) TO bs_app;
ALTER TABLE service_numbers DROP COLUMN answer_on_closing_days;
