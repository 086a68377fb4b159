-- One obligation model (see src/core/obligations.rs): a deadline is about a VM, a notice, a
-- project or (later) a request, so `vm_key` may be NULL; it carries its project and department
-- directly, for the project-level duties (art. 10 filing) and for scoping without joins.
ALTER TABLE deadlines ALTER COLUMN vm_key DROP NOT NULL;
ALTER TABLE deadlines ADD COLUMN project_id TEXT REFERENCES projects (id);
ALTER TABLE deadlines ADD COLUMN department_id TEXT REFERENCES departments (id);
UPDATE deadlines d SET project_id = v.project_id, department_id = p.department_id
FROM vms v JOIN projects p ON p.id = v.project_id WHERE v.key = d.vm_key;
ALTER TABLE deadlines ALTER COLUMN department_id SET NOT NULL;
CREATE UNIQUE INDEX deadlines_one_filing ON deadlines (project_id) WHERE kind = 'filing';
CREATE INDEX deadlines_department ON deadlines (department_id);
-- The `not_filed` alert is now the filing obligation's escalation.
UPDATE alerts SET cleared_at = raised_at WHERE kind = 'not_filed' AND cleared_at IS NULL;
