export * from "./events";
export * from "./lines";
export * from "./summary";
