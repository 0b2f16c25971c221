package procedure

// systemdManualKind is the verified signal steps of manual while systemd
// supervises nginx.service (Type=forking, PIDFile=/run/nginx.pid): whether
// systemd follows the new master or takes the old one's exit for the
// service's.
var systemdManualKind = Kind{Name: "systemd-manual", Systemd: true,
	Help: "the manual signal steps while systemd supervises nginx.service",
	run:  runManual}
