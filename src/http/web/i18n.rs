//! The dashboard's languages: Chinese by default, English on request. Every UI string of both
//! languages is in [`STRINGS`], the one table templates read (as `t.key`).

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` first, then the `lang` cookie, then Chinese.
    pub fn from_request(query: Option<&str>, headers: &HeaderMap) -> Lang {
        let from_query = query.and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .and_then(|(_, v)| Lang::parse(v))
        });
        from_query
            .or_else(|| cookie(headers, "lang").and_then(Lang::parse))
            .unwrap_or_default()
    }

    /// The string `key` in this language; the key itself if the table lacks it (a test keeps
    /// every key the templates use in the table).
    pub fn text(self, key: &str) -> &'static str {
        STRINGS
            .iter()
            .find(|(k, ..)| *k == key)
            .map(|(_, zh, en)| match self {
                Lang::Zh => *zh,
                Lang::En => *en,
            })
            .unwrap_or("?")
    }

    /// The string `key` in this language, if the table has it.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        STRINGS
            .iter()
            .find(|(k, ..)| *k == key)
            .map(|(_, zh, en)| match self {
                Lang::Zh => *zh,
                Lang::En => *en,
            })
    }

    /// The sentence `key` with each `{name}` replaced by its value: how details are said in
    /// the page's language from their figures.
    pub fn fill(self, key: &str, values: &[(&str, String)]) -> String {
        let mut out = self.text(key).to_owned();
        for (name, value) in values {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// Every string of this language, for the template context.
    pub fn table(self) -> std::collections::BTreeMap<&'static str, &'static str> {
        STRINGS
            .iter()
            .map(|(k, zh, en)| {
                (
                    *k,
                    match self {
                        Lang::Zh => *zh,
                        Lang::En => *en,
                    },
                )
            })
            .collect()
    }
}

pub use crate::http::auth::cookie;

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_request(parts.uri.query(), &parts.headers))
    }
}

/// (key, Chinese, English).
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("app_title", "政务云资源治理", "Cloud governance"),
    ("nav_overview", "总览", "Overview"),
    ("nav_notices", "通知", "Notices"),
    ("nav_network", "网络登记", "Network"),
    ("nav_reviews", "年度评估", "Reviews"),
    ("logout", "退出", "Log out"),
    ("role_admin", "管理员", "admin"),
    ("role_operator", "运维", "operator"),
    ("role_department", "部门用户", "department"),
    ("fleet_overview", "资源总览", "Fleet overview"),
    (
        "verdicts_by_resource",
        "各资源评估结果",
        "Verdicts by resource",
    ),
    ("resource", "资源", "Resource"),
    ("resource_cpu", "CPU", "CPU"),
    ("resource_memory", "内存", "Memory"),
    ("resource_disk", "磁盘", "Disk"),
    ("resource_usage", "系统使用", "Usage"),
    ("unit_cpu", "vCPU", "vCPU"),
    ("unit_memory", "GiB", "GiB"),
    ("unit_disk", "GiB", "GiB"),
    ("verdict_downsize", "核减", "Downsize"),
    ("verdict_expand", "扩容", "Expand"),
    ("verdict_ok", "正常", "OK"),
    ("verdict_insufficient_data", "数据不足", "Insufficient data"),
    ("verdict_unused", "疑似闲置", "Unused"),
    ("verdict_in_use", "在用", "In use"),
    ("unused_systems", "疑似闲置系统", "Systems no longer used"),
    (
        "unused_systems_note",
        "近期监测中未见使用迹象的云主机（第十三条：系统不再使用时应及时释放资源）。费用按评估规则中的单价估算。",
        "VMs that showed no sign of use in the lookback (art. 13: a system no longer used is released). Costs at the review rules' unit prices.",
    ),
    (
        "unused_none",
        "暂无疑似闲置的云主机。",
        "No VM looks unused.",
    ),
    ("cpu_max", "CPU最大值", "CPU max"),
    (
        "network_per_day",
        "单日网络流量（最高）",
        "Network a day (busiest)",
    ),
    ("network_not_reported", "未报送", "not reported"),
    ("days_observed", "监测天数", "Days observed"),
    ("monthly_cost", "每月费用（元）", "Monthly cost (yuan)"),
    (
        "idle_cost_total",
        "疑似闲置资源每月费用合计",
        "Monthly cost of the unused VMs",
    ),
    (
        "project_unused",
        "整个项目疑似闲置",
        "Whole project looks unused",
    ),
    ("release_advice", "释放建议", "Release advice"),
    ("decide_contest", "审核异议", "Decide the contest"),
    ("uphold", "维持建议", "Uphold"),
    ("withdraw", "撤回建议", "Withdraw"),
    ("decision", "审核结果", "Decision"),
    ("decision_upheld", "维持", "Upheld"),
    ("decision_withdrawn", "撤回", "Withdrawn"),
    ("waste", "闲置资源", "Idle capacity"),
    (
        "waste_note",
        "已分配给核减对象的资源，及按目标利用率调整后可回收的估算量。",
        "Capacity allocated to VMs with a downsize finding, and an estimate of what resizing them to the target utilisation returns.",
    ),
    ("vms", "虚拟机", "VMs"),
    ("allocated", "已分配", "Allocated"),
    ("reclaimable", "可回收（估算）", "Reclaimable (estimate)"),
    ("deadlines", "期限", "Deadlines"),
    ("deadline_kind_deployment", "部署", "Deployment"),
    ("deadline_kind_adjustment", "调整", "Adjustment"),
    ("deadline_kind_filing", "备案", "Filing"),
    ("deadline_kind_release", "释放答复", "Release answer"),
    ("deadline_kind_request_answer", "申请答复", "Request answer"),
    ("requests", "资源申请", "Resource requests"),
    ("request", "资源申请", "Resource request"),
    (
        "requests_note",
        "各部门部署业务系统应向市大数据发展中心提出资源申请（第十二条）；中心参照本部门现有云主机的实际使用情况审核，并在规定期限内答复。",
        "Departments apply to the big-data center for cloud resources (art. 12); the center reviews each request against the department's measured usage and answers within the period.",
    ),
    ("request_new", "提出资源申请", "New resource request"),
    ("purpose", "用途", "Purpose"),
    (
        "expected_load",
        "预计负载（资源需求分析）",
        "Expected load (resource needs analysis)",
    ),
    ("desired_on", "期望交付日期", "Desired delivery date"),
    ("submitted_on", "提交日期", "Submitted"),
    ("answer_due", "答复期限", "Answer due"),
    ("requested_vms", "申请的云主机", "VMs requested"),
    ("approved_size", "批准配置", "Approved size"),
    (
        "request_evidence",
        "本部门现有云主机的使用情况",
        "The department's VMs in use",
    ),
    (
        "open_downsize_notices",
        "未完成的核减通知",
        "Open downsize notices",
    ),
    ("same_project", "同项目", "same project"),
    (
        "no_comparables",
        "本部门暂无在用云主机的监测数据。",
        "The department has no VM with usage data.",
    ),
    ("new_project", "新建项目", "new project"),
    (
        "project_name_new",
        "新建项目名称（已有项目不填）",
        "New project's name (empty for an existing project)",
    ),
    (
        "vm_lines_note",
        "每行一台云主机：编号,vCPU,内存GiB,硬盘GiB",
        "One VM a line: id,vcpus,memory_gib,disk_gib",
    ),
    ("submit", "提交", "Submit"),
    (
        "amend",
        "调整配置（可选，每行：编号,vCPU,内存GiB,硬盘GiB）",
        "Amended sizes (optional, a line each: id,vcpus,memory_gib,disk_gib)",
    ),
    ("decide", "提交审核结果", "Decide"),
    ("deliver", "确认交付", "Record delivery"),
    ("request_approve", "批准", "Approve"),
    ("request_reject", "不予批准", "Reject"),
    ("request_state_submitted", "待审核", "Submitted"),
    ("request_state_approved", "已批准", "Approved"),
    ("request_state_rejected", "未批准", "Rejected"),
    ("request_state_delivered", "已交付", "Delivered"),
    ("from_request", "来自资源申请", "From resource request"),
    (
        "deadline_kind_registration",
        "IP备案核实",
        "Registration check",
    ),
    ("open", "未完成", "Open"),
    ("overdue", "已逾期", "Overdue"),
    ("calendar", "工作日历", "Working-day calendar"),
    ("calendar_years", "已加载年份", "Loaded years"),
    ("calendar_ok", "日历数据完整", "Calendar data complete"),
    (
        "calendar_missing",
        "缺少以下年份的工作日历数据：",
        "No working-day calendar data for",
    ),
    (
        "calendar_missing_effect",
        "跨入该年的截止日期暂按周一至周五计算（标记为暂定），请依国务院办公厅通知补充 rules/calendar/YYYY.toml。",
        "Deadlines reaching into it are provisional (counted Monday to Friday) until rules/calendar/YYYY.toml is added from the State Council notice.",
    ),
    ("departments", "部门", "Departments"),
    ("department", "部门", "Department"),
    ("projects", "项目", "Projects"),
    ("project", "项目", "Project"),
    ("name", "名称", "Name"),
    ("downsize_vms", "需核减", "To downsize"),
    ("expand_vms", "需扩容", "To expand"),
    ("open_notices", "未关闭通知", "Open notices"),
    ("overdue_deadlines", "逾期期限", "Overdue deadlines"),
    (
        "candidates",
        "核减建议（按分配量排序）",
        "Rightsizing candidates (largest first)",
    ),
    ("value", "统计值", "Value"),
    ("threshold", "阈值", "Threshold"),
    ("statistic", "统计方法", "Statistic"),
    ("filed_on", "备案日期", "Filed on"),
    ("vm", "虚拟机", "VM"),
    ("vcpus", "vCPU", "vCPU"),
    ("memory_gib", "内存 (GiB)", "Memory (GiB)"),
    ("disk_gib", "磁盘 (GiB)", "Disk (GiB)"),
    ("page", "第", "Page"),
    ("prev", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("delivered_on", "交付日期", "Delivered"),
    ("deployed_on", "部署日期", "Deployed"),
    ("released_on", "释放日期", "Released"),
    ("release_requested_on", "申请释放日期", "Release requested"),
    ("reason", "理由", "Reason"),
    ("agent", "采集代理", "Agent"),
    ("last_seen", "最近上报", "Last report"),
    ("no_agent", "未上报", "never reported"),
    ("usage", "资源使用", "Usage"),
    ("days_7", "近7天", "7 days"),
    ("days_30", "近30天", "30 days"),
    ("days_365", "近365天", "365 days"),
    ("avg", "平均", "average"),
    ("max", "峰值", "maximum"),
    ("no_data", "该时段无数据", "No data in this period"),
    ("findings", "评估结果", "Findings"),
    ("verdict", "结论", "Verdict"),
    ("samples", "样本数", "Samples"),
    ("days_with_samples", "有样本天数", "Days with samples"),
    ("evaluated_at", "评估时间", "Evaluated"),
    ("allocation_history", "配置变更记录", "Allocation history"),
    ("recorded_at", "记录时间", "Recorded"),
    ("source", "来源", "Source"),
    ("alerts", "告警", "Alerts"),
    ("notices", "通知", "Notices"),
    ("notice", "通知", "Notice"),
    ("notice_kind_downsize", "资源核减通知", "Downsize notice"),
    ("notice_kind_expand", "资源扩容建议", "Expansion advice"),
    ("notice_kind_release", "闲置资源释放建议", "Release advice"),
    ("state", "状态", "State"),
    ("state_open", "未关闭", "Open"),
    ("state_closed", "已关闭", "Closed"),
    ("all", "全部", "All"),
    ("issued_on", "下发日期", "Issued"),
    ("due_on", "截止日期", "Due"),
    ("done_on", "完成日期", "Done"),
    ("approved", "已审批", "Approved"),
    ("awaiting_approval", "待审批", "Awaiting approval"),
    ("timeline", "时间线", "Timeline"),
    ("event_issued", "通知生成", "Issued"),
    ("event_approved", "审批通过", "Approved"),
    ("event_emailed", "邮件", "E-mail"),
    ("event_created", "期限创建", "Deadline created"),
    ("event_reminder", "到期提醒", "Reminder"),
    ("event_escalation", "逾期上报", "Escalation"),
    ("event_done", "完成", "Done"),
    ("event_closed", "通知关闭", "Closed"),
    ("event_contest", "异议", "Contested"),
    ("mail_kind_digest", "通知汇总邮件", "digest e-mail"),
    ("mail_kind_reminder", "提醒邮件", "reminder e-mail"),
    ("mail_kind_escalation", "上报邮件", "escalation e-mail"),
    ("mail_state_pending", "待发送", "pending"),
    ("mail_state_sent", "已发送", "sent"),
    ("mail_state_no_recipient", "无收件人", "no recipient"),
    ("deadline_state", "期限状态", "Deadline state"),
    ("deadline_state_open", "进行中", "open"),
    ("deadline_state_overdue", "已逾期", "overdue"),
    ("deadline_state_done_on_time", "按期完成", "done on time"),
    ("deadline_state_done_late", "逾期完成", "done late"),
    (
        "provisional",
        "暂定：超出已加载的日历数据，按周一至周五计算",
        "provisional: past the loaded calendar data, counted Monday to Friday",
    ),
    ("contests", "异议", "Contests"),
    ("actions", "操作", "Actions"),
    ("approve", "审批并发送", "Approve and send"),
    ("complete", "确认完成", "Mark done"),
    ("contest", "提出异议", "Contest"),
    ("date", "日期", "Date"),
    ("confirm_deployed", "确认已部署", "Confirm deployment"),
    ("request_release", "申请释放", "Request release"),
    ("confirm_release", "确认释放", "Confirm release"),
    ("network_findings", "网络核查发现", "Network findings"),
    ("kind", "类型", "Kind"),
    ("ip", "IP", "IP"),
    ("mac", "MAC", "MAC"),
    ("evidence", "依据", "Evidence"),
    ("raised_at", "首次发现", "First raised"),
    ("last_raised_at", "最近发现", "Last raised"),
    ("ip_registry", "IP登记表", "IP registry"),
    ("holder", "使用人", "Holder"),
    ("registered_on", "登记日期", "Registered"),
    ("note", "备注", "Note"),
    ("gateway", "网关", "Gateway"),
    ("registry_set", "登记或修改", "Register or change"),
    ("remove", "删除", "Remove"),
    ("save", "保存", "Save"),
    ("reviews", "年度评估", "Annual reviews"),
    ("year", "年度", "Year"),
    ("score", "得分", "Score"),
    ("grade", "等级", "Grade"),
    ("open_report", "查看报告", "Open report"),
    ("year_summary", "年度汇总", "Year summary"),
    ("none", "无", "None"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    ("center", "中心", "center"),
    ("login", "登录", "Sign in"),
    ("username", "用户名", "User name"),
    ("password", "密码", "Password"),
    ("audit", "审计日志", "Audit log"),
    ("at", "时间", "Time"),
    ("user", "用户", "User"),
    ("action", "操作", "Action"),
    ("target", "对象", "Target"),
    ("detail", "详情", "Detail"),
    (
        "not_found",
        "未找到，或无权查看",
        "Not found, or not yours to see",
    ),
    ("bad_request", "请求有误", "Bad request"),
    ("server_error", "服务器内部错误", "Internal error"),
    ("back_to_overview", "返回总览", "Back to the overview"),
    // A notice's recommendation.
    ("recommended", "建议配置", "Recommended"),
    ("projected", "调整后预计使用率", "Projected use"),
    (
        "recommendation_note_below_smallest_size",
        "无可建议配置:最小配置下使用率仍处于核减范围,建议评估整合或释放",
        "No valid size: even the smallest allocation stays in downsize territory; consider consolidating or releasing",
    ),
    (
        "recommendation_note_no_size_in_band",
        "无可建议配置:按调整步长无法落入合理区间",
        "No valid size: no step lands inside the band",
    ),
    (
        "recommendation_note_no_allocation",
        "无可建议配置:未登记配置",
        "No valid size: the allocation is not known",
    ),
    // What an action did, shown after its redirect (`?done=CODE`, see `actions::OUTCOME_CODES`).
    (
        "flash_notice_approved",
        "通知已批准，已加入邮件发送队列。",
        "The notice is approved and queued for e-mail.",
    ),
    (
        "flash_notice_completed",
        "已确认资源调整完成。",
        "The adjustment is confirmed as done.",
    ),
    (
        "flash_notice_contested",
        "异议已提交，中心工作人员将审阅。",
        "The contest is recorded; center staff will review it.",
    ),
    (
        "flash_request_submitted",
        "资源申请已提交。",
        "The request is submitted.",
    ),
    (
        "flash_request_approved",
        "资源申请已批准。",
        "The request is approved.",
    ),
    (
        "flash_request_rejected",
        "资源申请未予批准。",
        "The request is rejected.",
    ),
    (
        "flash_request_delivered",
        "已确认交付，部署期限开始计算。",
        "The delivery is recorded; the deployment deadlines run.",
    ),
    (
        "flash_contest_upheld",
        "已维持释放建议，请使用部门在期限内申请释放。",
        "The release advice stands; the department requests the release by the due date.",
    ),
    (
        "flash_contest_withdrawn",
        "已撤回释放建议。",
        "The release advice is withdrawn.",
    ),
    (
        "flash_vm_deployed",
        "已确认系统部署完成。",
        "The deployment is confirmed.",
    ),
    (
        "flash_release_requested",
        "释放申请已提交，待中心确认。",
        "The release is requested; center staff confirm it.",
    ),
    (
        "flash_vm_released",
        "已确认资源释放。",
        "The release is confirmed.",
    ),
    (
        "flash_registry_registered",
        "IP地址已备案。",
        "The IP address is registered.",
    ),
    (
        "flash_registry_changed",
        "IP备案已修改。",
        "The registration is changed.",
    ),
    (
        "flash_registry_unchanged",
        "IP备案未变化。",
        "The registration is unchanged.",
    ),
    (
        "flash_registry_removed",
        "IP备案已删除。",
        "The registration is removed.",
    ),
    (
        "flash_project_filed",
        "项目备案已记录。",
        "The project's filing is recorded.",
    ),
    // Why a sign-in failed (`/login?error=CODE`).
    (
        "login_error_expired",
        "表单已过期，请重试。",
        "The form expired: try again.",
    ),
    (
        "login_error_wrong",
        "用户名或密码错误。",
        "Wrong user name or password.",
    ),
    (
        "login_error_throttled",
        "登录失败次数过多，请15分钟后再试。",
        "Too many failed sign-ins: try again in 15 minutes.",
    ),
    // Details, said from their figures (web::describe). `{name}` is filled in.
    ("list_sep", "、", ", "),
    ("and_sep", "与", " and "),
    ("clause_sep", "；", "; "),
    ("provisional_short", "（暂定）", " (provisional)"),
    (
        "detail_created",
        "{start}起{n}个工作日，{due}截止",
        "{n} working days after {start}: due {due}",
    ),
    (
        "detail_reminder",
        "{due}截止，还剩{n}个工作日",
        "due {due}: {n} working days left",
    ),
    (
        "detail_escalation",
        "已于{due}到期，逾期{n}个工作日，已上报中心",
        "was due {due}: overdue by {n} working days; escalated to the center",
    ),
    (
        "detail_done",
        "{on}完成（{source}）",
        "done on {on} ({source})",
    ),
    ("detail_released", "虚拟机于{on}释放", "VM released on {on}"),
    ("source_confirmed", "人工确认", "confirmed"),
    ("source_inventory", "资源清单", "inventory"),
    (
        "source_inferred",
        "据监测数据推断",
        "inferred from agent data",
    ),
    ("source_agent", "代理上报的配置", "agent-reported capacity"),
    ("source_released", "资源释放", "released"),
    (
        "source_release_requested",
        "使用部门申请释放",
        "release requested",
    ),
    ("source_withdrawn", "中心撤回建议", "advice withdrawn"),
    ("source_seen_in_use", "监测显示仍在使用", "seen in use"),
    ("source_answered", "中心已答复", "answered"),
    ("source_filed", "备案", "filed"),
    ("source_kubernetes", "Kubernetes", "Kubernetes"),
    ("closed_released", "虚拟机已释放", "VM released"),
    (
        "closed_completed",
        "调整已完成（{source}）",
        "adjustment done ({source})",
    ),
    ("alert_kind_silent_agent", "代理长期未上报", "Silent agent"),
    ("alert_kind_not_filed", "项目未备案", "Project not filed"),
    ("alert_kind_clock_skew", "代理时钟偏差", "Agent clock skew"),
    (
        "alert_kind_reports_dropped",
        "代理丢弃上报",
        "Reports dropped",
    ),
    (
        "alert_silent_since",
        "自{since}起无代理上报，已{n}个工作日",
        "no agent report since {since}: {n} working days",
    ),
    (
        "alert_silent_never",
        "自{deployed}部署以来从未收到代理上报，已{n}个工作日",
        "no agent report since deployment on {deployed}: {n} working days",
    ),
    (
        "alert_not_filed",
        "项目{project}于{first}部署，未按期备案（备案期限{due}，第十条）",
        "project {project} deployed on {first} is not filed; filing was due {due} (art. 10)",
    ),
    (
        "alert_clock_behind",
        "代理时钟比服务器慢{n}秒（上限{limit}秒），请校准该虚拟机的NTP",
        "agent clock is {n} s behind the daemon's (limit {limit} s): fix NTP on the VM",
    ),
    (
        "alert_clock_ahead",
        "代理时钟比服务器快{n}秒（上限{limit}秒），请校准该虚拟机的NTP",
        "agent clock is {n} s ahead of the daemon's (limit {limit} s): fix NTP on the VM",
    ),
    (
        "alert_reports_dropped",
        "代理丢弃了{n}条上报（队列或缓存已满）",
        "the agent dropped {n} reports (queue or spool full)",
    ),
    (
        "netkind_unregistered_ip",
        "IP地址未备案",
        "Unregistered address",
    ),
    ("netkind_mac_mismatch", "IP与MAC绑定不符", "MAC mismatch"),
    ("netkind_ip_conflict", "IP地址冲突", "Address conflict"),
    (
        "netkind_dhcp_address",
        "未使用静态IP（DHCP）",
        "DHCP address",
    ),
    (
        "netkind_suspected_router",
        "疑似私接路由设备",
        "Suspected router",
    ),
    (
        "netkind_stale_registration",
        "备案IP长期未使用",
        "Stale registration",
    ),
    ("sighting_arp", "交换机ARP表", "arp"),
    ("sighting_interface", "虚拟机网卡", "interface"),
    ("sighting_neighbour", "虚拟机邻居表", "neighbour"),
    ("config_source_unknown", "配置来源未知", "source unknown"),
    (
        "evidence_unregistered",
        "{ip}（MAC {mac}）不在IP登记表中；{seen}发现，最近一次{last}",
        "{ip} with MAC {mac} is not in the IP registry; seen by {seen} until {last}",
    ),
    (
        "evidence_other_mac",
        "{ip}登记绑定{bound}（{holder}），但{seen}发现其MAC为{mac}，最近一次{last}",
        "{ip} is bound to {bound} ({holder}) but was seen with {mac} by {seen} until {last}",
    ),
    (
        "evidence_conflict",
        "近{days}天内{macs}同时使用{ip}",
        "{ip} was in use by {macs} at the same time within the last {days} days",
    ),
    (
        "evidence_dhcp",
        "虚拟机{vm}的网卡{mac}通过DHCP获取{ip}（{source}）；第十四条要求配置静态IP",
        "VM {vm} interface {mac} gets {ip} by DHCP ({source}); art. 14 requires a static address",
    ),
    (
        "evidence_many_addresses",
        "{mac}应答{n}个地址（{list}）：疑似一个端口后接路由或NAT设备",
        "{mac} answers for {n} addresses ({list}): a router or NAT device behind one port",
    ),
    (
        "evidence_router_maker",
        "{mac}属于消费级路由器厂商{maker}（OUI {oui}）",
        "{mac} belongs to {maker} (OUI {oui}), a maker of consumer routers",
    ),
    (
        "evidence_stale_seen",
        "{ip}（{holder}）最近一次出现于{last}，已{n}个工作日未见",
        "{ip} ({holder}) last seen {last}: {n} working days",
    ),
    (
        "evidence_stale_never",
        "{ip}（{holder}）自{registered}登记以来从未出现，已{n}个工作日",
        "{ip} ({holder}) never seen since registration on {registered}: {n} working days",
    ),
    ("audit_action_login", "登录", "Sign-in"),
    ("audit_action_login_failed", "登录失败", "Failed sign-in"),
    ("audit_action_approve_notice", "审批通知", "Approve notice"),
    (
        "audit_action_complete_notice",
        "确认调整完成",
        "Confirm adjustment",
    ),
    (
        "audit_action_contest_notice",
        "对通知提出异议",
        "Contest notice",
    ),
    (
        "audit_action_mark_deployed",
        "确认部署",
        "Confirm deployment",
    ),
    (
        "audit_action_request_release",
        "申请释放",
        "Request release",
    ),
    (
        "audit_action_confirm_release",
        "确认释放",
        "Confirm release",
    ),
    ("audit_action_set_registry", "登记IP", "Register IP"),
    (
        "audit_action_remove_registry",
        "删除IP登记",
        "Remove IP registration",
    ),
    ("target_vm", "虚拟机", "VM"),
    ("target_notice", "通知", "notice"),
    ("target_ip", "IP", "IP"),
    ("target_session", "会话", "session"),
    ("audit_on", "日期 {on}", "on {on}"),
    ("audit_reason", "理由：{reason}", "reason: {reason}"),
    (
        "audit_deadlines_closed",
        "关闭期限 {n} 项",
        "{n} deadlines closed",
    ),
    (
        "audit_binding",
        "MAC {mac}，部门 {department}",
        "MAC {mac}, department {department}",
    ),
    ("audit_outcome_registered", "新登记", "registered"),
    ("audit_outcome_changed", "已修改", "changed"),
    ("audit_outcome_unchanged", "无变化", "unchanged"),
    ("review_verdict_keep", "保留", "Keep"),
    ("review_verdict_consolidate", "整合", "Consolidate"),
    ("review_verdict_cancel", "取消", "Cancel"),
    (
        "review_verdict_not_filed",
        "未备案（停止运维经费）",
        "Not filed (budget stops)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_beats_cookie_and_chinese_is_the_default() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::from_request(None, &headers), Lang::Zh);
        headers.insert(
            axum::http::header::COOKIE,
            "sid=x; lang=en".parse().expect("header"),
        );
        assert_eq!(Lang::from_request(None, &headers), Lang::En);
        assert_eq!(Lang::from_request(Some("a=1&lang=zh"), &headers), Lang::Zh);
        assert_eq!(Lang::from_request(Some("lang=xx"), &headers), Lang::En);
    }

    #[test]
    fn keys_are_unique_and_both_languages_are_filled() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in STRINGS {
            assert!(seen.insert(k), "duplicate key {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} has an empty string");
        }
        assert_eq!(Lang::En.text("verdict_downsize"), "Downsize");
        // A new obligation kind needs its label on the pages (ARCHITECTURE.md, adding a kind).
        for kind in crate::core::obligations::ObligationKind::ALL {
            let key = format!("deadline_kind_{kind}");
            assert!(seen.contains(&key.as_str()), "no string {key}");
        }
        for code in crate::jobs::actions::OUTCOME_CODES {
            let key = format!("flash_{code}");
            assert!(
                seen.contains(&key.as_str()),
                "no string {key} for an action's outcome"
            );
        }
        assert_eq!(Lang::Zh.text("verdict_downsize"), "核减");
    }
}
