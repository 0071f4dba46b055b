//! The small production VPC the samples come from: web, app and data tiers across three
//! Availability Zones, a NAT gateway per AZ, a bastion and a monitoring host.

/// The account every sample belongs to.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const VPC: &str = "vpc-0a1b2c3d4e5f60718";
/// AZ ids (not names), as flow logs write them.
pub const AZS: [&str; 3] = ["use1-az1", "use1-az2", "use1-az4"];

/// A subnet tier; each tier has its own flow log (and so its own format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Public subnets: web servers, NAT gateways, bastion.
    Web,
    /// Private subnets: application servers, monitoring.
    App,
    /// Isolated subnets: databases and caches.
    Data,
}

/// One network interface (and the instance behind it, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub role: Role,
    pub tier: Tier,
    pub az: usize,
    pub ip: String,
    pub eni: String,
    /// `None` for requester-managed interfaces (NAT gateway).
    pub instance: Option<String>,
    pub subnet: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Web,
    App,
    Db,
    Cache,
    Nat,
    Bastion,
    Monitoring,
    /// Sends an offsite backup every window (a steady bulk sender).
    Backup,
    /// Serves a model on port 8000 (the public-exposure incident).
    Inference,
}

/// The VPC's hosts.
#[derive(Debug, Clone)]
pub struct Topology {
    pub hosts: Vec<Host>,
}

fn subnet_id(tier: Tier, az: usize) -> String {
    let t = match tier {
        Tier::Web => 1,
        Tier::App => 2,
        Tier::Data => 3,
    };
    format!("subnet-0{t}{az}a2b3c4d5e6f7a8")
}

fn cidr_base(tier: Tier, az: usize) -> String {
    let third = match tier {
        Tier::Web => az,
        Tier::App => 10 + az,
        Tier::Data => 20 + az,
    };
    format!("10.0.{third}")
}

impl Default for Topology {
    fn default() -> Self {
        let mut hosts = Vec::new();
        let mut n = 0u32;
        let mut add =
            |name: String, role: Role, tier: Tier, az: usize, host: u32, managed: bool| {
                n += 1;
                hosts.push(Host {
                    name,
                    role,
                    tier,
                    az,
                    ip: format!("{}.{host}", cidr_base(tier, az)),
                    eni: format!("eni-0{n:03x}{az}c0ffee{n:05x}"),
                    instance: (!managed).then(|| format!("i-0{n:03x}{az}deadbeef{n:04x}")),
                    subnet: subnet_id(tier, az),
                });
            };
        for az in 0..3 {
            add(
                format!("web-{}", az + 1),
                Role::Web,
                Tier::Web,
                az,
                10,
                false,
            );
            add(format!("nat-{}", az + 1), Role::Nat, Tier::Web, az, 5, true);
            for k in 0..2 {
                add(
                    format!("app-{}", az * 2 + k + 1),
                    Role::App,
                    Tier::App,
                    az,
                    20 + k as u32,
                    false,
                );
            }
        }
        add("bastion".into(), Role::Bastion, Tier::Web, 0, 100, false);
        add(
            "monitoring".into(),
            Role::Monitoring,
            Tier::App,
            1,
            200,
            false,
        );
        add("backup".into(), Role::Backup, Tier::App, 2, 50, false);
        add("inference".into(), Role::Inference, Tier::App, 1, 60, false);
        add("db-primary".into(), Role::Db, Tier::Data, 0, 30, false);
        add("db-replica".into(), Role::Db, Tier::Data, 1, 30, false);
        add("cache".into(), Role::Cache, Tier::Data, 2, 40, false);
        Topology { hosts }
    }
}

impl Topology {
    pub fn with_role(&self, role: Role) -> Vec<&Host> {
        self.hosts.iter().filter(|h| h.role == role).collect()
    }

    pub fn by_name(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}
