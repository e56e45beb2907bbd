mod audit;
mod dashboards;
