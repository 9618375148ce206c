// The build step: writes dist/banner.json, which the server reads at start.
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/banner.json", JSON.stringify({ built: "express build ok" }));
