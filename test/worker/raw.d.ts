// Vite returns the text of a file imported with the `?raw` suffix.
declare module '*?raw' {
  const text: string
  export default text
}
